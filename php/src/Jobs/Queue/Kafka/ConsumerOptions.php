<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\Kafka;

/** consumer_options: the topics (or fixed partitions) a pipeline reads, and where it starts. */
final class ConsumerOptions implements \JsonSerializable
{
    public const CONSUMER_REGEXP_DEFAULT_VALUE = false;
    public const CONSUMER_MAX_FETCH_MESSAGE_SIZE_DEFAULT_VALUE = 50_000;
    public const CONSUMER_MIN_FETCH_MESSAGE_SIZE_DEFAULT_VALUE = 1;

    /**
     * @param list<string> $topics
     * @param list<ConsumePartition> $consumePartitions
     */
    public function __construct(
        public readonly array $topics = [],
        public readonly bool $consumeRegexp = self::CONSUMER_REGEXP_DEFAULT_VALUE,
        public readonly int $maxFetchMessageSize = self::CONSUMER_MAX_FETCH_MESSAGE_SIZE_DEFAULT_VALUE,
        public readonly int $minFetchMessageSize = self::CONSUMER_MIN_FETCH_MESSAGE_SIZE_DEFAULT_VALUE,
        public readonly array $consumePartitions = [],
        public readonly ConsumerOffset $consumerOffset = new ConsumerOffset(OffsetType::AtStart, 1),
    ) {
        if ($topics === [] && $consumePartitions === []) {
            throw new \InvalidArgumentException('give topics or consumePartitions');
        }
        if ($maxFetchMessageSize < 1 || $minFetchMessageSize < 1) {
            throw new \InvalidArgumentException('fetch message sizes must be >= 1');
        }
    }

    public function jsonSerialize(): array
    {
        $data = [
            'topics' => $this->topics,
            'consume_regexp' => $this->consumeRegexp,
            'max_fetch_message_size' => $this->maxFetchMessageSize,
            'min_fetch_message_size' => $this->minFetchMessageSize,
            'consumer_offset' => $this->consumerOffset,
        ];
        foreach ($this->consumePartitions as $partition) {
            $data['consume_partitions'][$partition->topic][$partition->partition] = $partition->offset;
        }
        return $data;
    }
}
