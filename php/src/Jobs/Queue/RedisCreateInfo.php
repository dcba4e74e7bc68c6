<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * A Redis Streams pipeline (`driver: redis`, fastrr's own: RoadRunner has no
 * redis jobs driver, so roadrunner-php/jobs has no such class). Durations are
 * whole seconds. The connection keys (addrs, db, username, password) are sent
 * only when given: otherwise the server's top-level `redis:` section applies.
 * An empty prefix, group or consumer means the server's default
 * (fastrr:jobs:{<name>}, "fastrr", <host>-<pid>-<random>).
 */
final class RedisCreateInfo extends CreateInfo
{
    public const PREFETCH_DEFAULT_VALUE = 100;
    public const VISIBILITY_TIMEOUT_DEFAULT_VALUE = 30;
    public const BLOCK_TIMEOUT_DEFAULT_VALUE = 1;
    public const MAX_LENGTH_DEFAULT_VALUE = 0;

    /**
     * @param list<string> $addrs
     */
    public function __construct(
        string $name,
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        public readonly int $prefetch = self::PREFETCH_DEFAULT_VALUE,
        public readonly string $prefix = '',
        public readonly string $group = '',
        public readonly string $consumer = '',
        public readonly int $visibilityTimeout = self::VISIBILITY_TIMEOUT_DEFAULT_VALUE,
        public readonly int $blockTimeout = self::BLOCK_TIMEOUT_DEFAULT_VALUE,
        public readonly int $maxLength = self::MAX_LENGTH_DEFAULT_VALUE,
        public readonly bool $deleteOnStop = false,
        public readonly array $addrs = [],
        public readonly ?int $db = null,
        public readonly string $username = '',
        public readonly string $password = '',
    ) {
        parent::__construct(Driver::Redis, $name, $priority);
        if ($prefetch < 1) {
            throw new \InvalidArgumentException(\sprintf('prefetch must be >= 1, got %d', $prefetch));
        }
        if ($visibilityTimeout < 1) {
            throw new \InvalidArgumentException(
                \sprintf('visibilityTimeout must be >= 1 second, got %d', $visibilityTimeout),
            );
        }
        if ($blockTimeout < 1 || $blockTimeout * 3 > $visibilityTimeout) {
            throw new \InvalidArgumentException(\sprintf(
                'blockTimeout must be >= 1 second and at most a third of visibilityTimeout (%d), got %d',
                $visibilityTimeout,
                $blockTimeout,
            ));
        }
        if ($maxLength < 0) {
            throw new \InvalidArgumentException(\sprintf('maxLength must be >= 0, got %d', $maxLength));
        }
    }

    public function toArray(): array
    {
        $out = parent::toArray() + [
            'prefetch' => $this->prefetch,
            'visibility_timeout' => $this->visibilityTimeout,
            'block_timeout' => $this->blockTimeout,
            'max_length' => $this->maxLength,
            'delete_on_stop' => $this->deleteOnStop,
        ];
        foreach (['prefix' => $this->prefix, 'group' => $this->group, 'consumer' => $this->consumer,
                     'username' => $this->username, 'password' => $this->password] as $key => $value) {
            if ($value !== '') {
                $out[$key] = $value;
            }
        }
        if ($this->addrs !== []) {
            $out['addrs'] = \array_values($this->addrs);
        }
        if ($this->db !== null) {
            $out['db'] = $this->db;
        }
        return $out;
    }
}
