<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\Kafka;

/** One entry of consumer_options.consume_partitions: read `partition` of `topic` from `offset`. */
final class ConsumePartition
{
    public function __construct(
        public readonly string $topic,
        public readonly int $partition,
        public readonly ConsumerOffset $offset,
    ) {
        if ($topic === '') {
            throw new \InvalidArgumentException('a topic name must not be empty');
        }
        if ($partition < 0) {
            throw new \InvalidArgumentException(\sprintf('partition must be >= 0, got %d', $partition));
        }
    }
}
