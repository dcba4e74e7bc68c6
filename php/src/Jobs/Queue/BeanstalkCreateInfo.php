<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * A beanstalkd pipeline (`driver: beanstalk`), as roadrunner-php/jobs' class of
 * the same name: `tube`, `tube_priority` (the beanstalkd put priority; fastrr adds
 * each job's priority to it), `reserve_timeout` in seconds, and `consume_all`,
 * which the server accepts and ignores (no RoadRunner version reads it).
 */
final class BeanstalkCreateInfo extends CreateInfo
{
    public const TUBE_PRIORITY_DEFAULT_VALUE = 10;
    public const TUBE_PRIORITY_MAX_VALUE = 2 ** 32;
    public const TUBE_DEFAULT_VALUE = 'default';
    public const RESERVE_TIMEOUT_DEFAULT_VALUE = 5;
    public const CONSUME_ALL_DEFAULT_VALUE = false;

    public function __construct(
        string $name,
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        public readonly int $tubePriority = self::TUBE_PRIORITY_DEFAULT_VALUE,
        public readonly string $tube = self::TUBE_DEFAULT_VALUE,
        public readonly int $reserveTimeout = self::RESERVE_TIMEOUT_DEFAULT_VALUE,
        public readonly bool $consumeAll = self::CONSUME_ALL_DEFAULT_VALUE,
    ) {
        parent::__construct(Driver::Beanstalk, $name, $priority);
        if ($tubePriority < 1 || $tubePriority >= self::TUBE_PRIORITY_MAX_VALUE) {
            throw new \InvalidArgumentException(\sprintf('tubePriority must be 1..2^32-1, got %d', $tubePriority));
        }
        if ($tube === '') {
            throw new \InvalidArgumentException('tube must not be empty');
        }
        if ($reserveTimeout < 0) {
            throw new \InvalidArgumentException(\sprintf('reserveTimeout must be >= 0, got %d', $reserveTimeout));
        }
    }

    public function toArray(): array
    {
        return parent::toArray() + [
            'tube_priority' => $this->tubePriority,
            'tube' => $this->tube,
            'reserve_timeout' => $this->reserveTimeout,
            'consume_all' => $this->consumeAll,
        ];
    }
}
