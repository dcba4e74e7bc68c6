<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * A durable pipeline (`driver: boltdb`; fastrr keeps it in an SQLite file).
 * `permissions` goes out as the decimal string of the int (0755 → "493"),
 * as RoadRunner's PHP library sends it.
 */
final class BoltdbCreateInfo extends CreateInfo
{
    public const PREFETCH_DEFAULT_VALUE = 10000;
    public const FILE_DEFAULT_VALUE = 'rr.db';
    public const PERMISSIONS_DEFAULT_VALUE = 0755;

    public function __construct(
        string $name,
        public readonly string $file = self::FILE_DEFAULT_VALUE,
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        public readonly int $prefetch = self::PREFETCH_DEFAULT_VALUE,
        public readonly int $permissions = self::PERMISSIONS_DEFAULT_VALUE,
    ) {
        parent::__construct(Driver::BoltDB, $name, $priority);
        if ($prefetch < 1) {
            throw new \InvalidArgumentException(\sprintf('prefetch must be >= 1, got %d', $prefetch));
        }
        if ($file === '') {
            throw new \InvalidArgumentException('file must not be empty');
        }
    }

    public function toArray(): array
    {
        return parent::toArray() + [
            'prefetch' => $this->prefetch,
            'file' => $this->file,
            'permissions' => $this->permissions,
        ];
    }
}
