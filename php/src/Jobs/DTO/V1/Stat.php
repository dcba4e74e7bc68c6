<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.Stat`: one pipeline's state in the answer of `jobs.Stat`.
 *
 *   string pipeline = 1; string driver = 2; string queue = 3;
 *   int64 active = 4; int64 delayed = 5; int64 reserved = 6;
 *   bool ready = 7 (false: paused or never started); uint64 priority = 8
 */
final class Stat extends Message
{
    protected const FIELDS = [
        1 => ['pipeline', 'string', ''],
        2 => ['driver', 'string', ''],
        3 => ['queue', 'string', ''],
        4 => ['active', 'int64', ''],
        5 => ['delayed', 'int64', ''],
        6 => ['reserved', 'int64', ''],
        7 => ['ready', 'bool', ''],
        8 => ['priority', 'uint64', ''],
    ];

    public string $pipeline = '';
    public string $driver = '';
    public string $queue = '';
    public int $active = 0;
    public int $delayed = 0;
    public int $reserved = 0;
    public bool $ready = false;
    public int $priority = 0;

    public function getPipeline(): string
    {
        return $this->pipeline;
    }

    public function getDriver(): string
    {
        return $this->driver;
    }

    public function getQueue(): string
    {
        return $this->queue;
    }

    public function getActive(): int
    {
        return $this->active;
    }

    public function getDelayed(): int
    {
        return $this->delayed;
    }

    public function getReserved(): int
    {
        return $this->reserved;
    }

    public function getReady(): bool
    {
        return $this->ready;
    }

    public function getPriority(): int
    {
        return $this->priority;
    }
}
