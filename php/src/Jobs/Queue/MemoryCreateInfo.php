<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * An in-memory pipeline: `prefetch` bounds the jobs handed out and not finished.
 */
final class MemoryCreateInfo extends CreateInfo
{
    public const PREFETCH_DEFAULT_VALUE = 100_000;

    public function __construct(
        string $name,
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        public readonly int $prefetch = self::PREFETCH_DEFAULT_VALUE,
    ) {
        parent::__construct(Driver::Memory, $name, $priority);
        if ($prefetch < 1) {
            throw new \InvalidArgumentException(\sprintf('prefetch must be >= 1, got %d', $prefetch));
        }
    }

    public function toArray(): array
    {
        return parent::toArray() + ['prefetch' => $this->prefetch];
    }
}
