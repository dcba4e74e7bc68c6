<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

use Fastrr\Jobs\Queue\Kafka\ConsumerOptions;
use Fastrr\Jobs\Queue\Kafka\GroupOptions;
use Fastrr\Jobs\Queue\Kafka\ProducerOptions;

/**
 * A kafka pipeline, with the keys spiral/roadrunner-jobs' KafkaCreateInfo
 * sends: `brokers` (fastrr, as RoadRunner, connects to the kafka section's
 * brokers and warns when these differ), `auto_create_topics`, and the three
 * option maps as JSON (producer_options, consumer_options, group_options).
 * fastrr pushes to the first topic of consumer_options.
 */
final class KafkaCreateInfo extends CreateInfo
{
    public const AUTO_CREATE_TOPICS_ENABLE_VALUE = false;

    /**
     * @param list<string> $brokers
     */
    public function __construct(
        string $name,
        public readonly array $brokers = ['127.0.0.1:9092'],
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        public readonly bool $autoCreateTopics = self::AUTO_CREATE_TOPICS_ENABLE_VALUE,
        public readonly ?ProducerOptions $producerOptions = null,
        public readonly ?ConsumerOptions $consumerOptions = null,
        public readonly ?GroupOptions $groupOptions = null,
    ) {
        parent::__construct(Driver::Kafka, $name, $priority);
    }

    public function toArray(): array
    {
        $info = ['brokers' => $this->brokers, 'auto_create_topics' => $this->autoCreateTopics];
        if ($this->producerOptions !== null) {
            $info['producer_options'] = $this->producerOptions;
        }
        if ($this->consumerOptions !== null) {
            $info['consumer_options'] = $this->consumerOptions;
        }
        if ($this->groupOptions !== null) {
            $info['group_options'] = $this->groupOptions;
        }
        return \array_merge(parent::toArray(), $info);
    }
}
