<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

use Fastrr\Jobs\Queue\AMQP\ExchangeType;

/**
 * A RabbitMQ pipeline (`driver: amqp`), with the keys and defaults of
 * RoadRunner's PHP AMQPCreateInfo so `jobs.Declare` maps the same way.
 * `queue` is needed to consume (an empty one makes a push-only pipeline);
 * `queueHeaders` are the queue's declare arguments (sent as JSON);
 * `consumerId` null lets the server pick `roadrunner-<uuid4>`.
 */
final class AMQPCreateInfo extends CreateInfo
{
    public const PREFETCH_DEFAULT_VALUE = 100;
    public const QUEUE_DEFAULT_VALUE = 'default';
    public const EXCHANGE_DEFAULT_VALUE = 'amqp.default';
    public const ROUTING_KEY_DEFAULT_VALUE = '';
    public const REDIAL_TIMEOUT_DEFAULT_VALUE = 60;

    /**
     * @param array<string, mixed> $queueHeaders
     */
    public function __construct(
        string $name,
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        public readonly int $prefetch = self::PREFETCH_DEFAULT_VALUE,
        public readonly string $queue = self::QUEUE_DEFAULT_VALUE,
        public readonly string $exchange = self::EXCHANGE_DEFAULT_VALUE,
        public readonly ExchangeType $exchangeType = ExchangeType::Direct,
        public readonly string $routingKey = self::ROUTING_KEY_DEFAULT_VALUE,
        public readonly bool $exclusive = false,
        public readonly bool $multipleAck = false,
        public readonly bool $requeueOnFail = false,
        public readonly bool $durable = false,
        public readonly bool $exchangeDurable = false,
        public readonly array $queueHeaders = [],
        public readonly bool $deleteQueueOnStop = false,
        public readonly int $redialTimeout = self::REDIAL_TIMEOUT_DEFAULT_VALUE,
        public readonly bool $exchangeAutoDelete = false,
        public readonly bool $queueAutoDelete = false,
        public readonly ?string $consumerId = null,
    ) {
        parent::__construct(Driver::AMQP, $name, $priority);
        if ($prefetch < 1 || $prefetch > 65535) {
            throw new \InvalidArgumentException(\sprintf('prefetch must be 1..65535, got %d', $prefetch));
        }
        if ($redialTimeout < 1) {
            throw new \InvalidArgumentException(\sprintf('redialTimeout must be >= 1, got %d', $redialTimeout));
        }
        if ($exchange === '') {
            throw new \InvalidArgumentException('exchange must not be empty');
        }
        if ($consumerId === '') {
            throw new \InvalidArgumentException('consumerId must be null or a non-empty string');
        }
    }

    public function toArray(): array
    {
        $result = parent::toArray() + [
            'prefetch' => $this->prefetch,
            'queue' => $this->queue,
            'queue_auto_delete' => $this->queueAutoDelete,
            'exchange' => $this->exchange,
            'exchange_durable' => $this->exchangeDurable,
            'exchange_type' => $this->exchangeType->value,
            'exchange_auto_delete' => $this->exchangeAutoDelete,
            'routing_key' => $this->routingKey,
            'exclusive' => $this->exclusive,
            'multiple_ack' => $this->multipleAck,
            'requeue_on_fail' => $this->requeueOnFail,
            'durable' => $this->durable,
            'delete_queue_on_stop' => $this->deleteQueueOnStop,
            'redial_timeout' => $this->redialTimeout,
        ];
        if ($this->consumerId !== null) {
            $result['consumer_id'] = $this->consumerId;
        }
        if ($this->queueHeaders !== []) {
            $result['queue_headers'] = $this->queueHeaders;
        }
        return $result;
    }
}
