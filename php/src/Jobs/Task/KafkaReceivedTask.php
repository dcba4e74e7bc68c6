<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

use Fastrr\Jobs\Queue\Driver;
use Fastrr\Worker;

/**
 * A task from a kafka pipeline: the record's topic, partition and offset come
 * with it (the context keys "topic", "partition" and "offset"), as in
 * spiral/roadrunner-jobs' KafkaReceivedTask.
 */
final class KafkaReceivedTask extends ReceivedTask
{
    /**
     * @param array<string, list<string>> $headers
     */
    public function __construct(
        Worker $worker,
        string $id,
        string $pipeline,
        string $job,
        string $queue,
        private readonly string $topic,
        private readonly int $partition,
        private readonly int $offset,
        string $payload,
        array $headers = [],
    ) {
        parent::__construct($worker, $id, Driver::Kafka, $pipeline, $job, $queue, $payload, $headers);
    }

    public function getTopic(): string
    {
        return $this->topic;
    }

    public function getPartition(): int
    {
        return $this->partition;
    }

    public function getOffset(): int
    {
        return $this->offset;
    }
}
