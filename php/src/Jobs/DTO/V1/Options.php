<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.Options`: how one job is pushed.
 *
 *   int64 priority = 1; string pipeline = 2; int64 delay = 3 (seconds);
 *   reserved 4, 5; bool auto_ack = 6;
 *   string topic = 7; string metadata = 8; int64 offset = 9; int32 partition = 10  (kafka)
 */
final class Options extends Message
{
    protected const FIELDS = [
        1 => ['priority', 'int64', ''],
        2 => ['pipeline', 'string', ''],
        3 => ['delay', 'int64', ''],
        6 => ['auto_ack', 'bool', ''],
        7 => ['topic', 'string', ''],
        8 => ['metadata', 'string', ''],
        9 => ['offset', 'int64', ''],
        10 => ['partition', 'int32', ''],
    ];

    public int $priority = 0;
    public string $pipeline = '';
    public int $delay = 0;
    public bool $autoAck = false;
    public string $topic = '';
    public string $metadata = '';
    public int $offset = 0;
    public int $partition = 0;

    public function getPriority(): int
    {
        return $this->priority;
    }

    public function getPipeline(): string
    {
        return $this->pipeline;
    }

    public function getDelay(): int
    {
        return $this->delay;
    }

    public function getAutoAck(): bool
    {
        return $this->autoAck;
    }

    public function getTopic(): string
    {
        return $this->topic;
    }

    public function getMetadata(): string
    {
        return $this->metadata;
    }

    public function getOffset(): int
    {
        return $this->offset;
    }

    public function getPartition(): int
    {
        return $this->partition;
    }
}
