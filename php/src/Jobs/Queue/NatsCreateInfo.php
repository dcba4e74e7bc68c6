<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * A NATS JetStream pipeline (`driver: nats`): jobs published to `subject`,
 * stored in `stream`, read through a durable consumer of the pipeline.
 * Properties, defaults and toArray() keys are those of RoadRunner's PHP
 * library (spiral/roadrunner-jobs NatsCreateInfo), so code written for it
 * declares the same pipeline here. fastrr gives `deliver_new` and
 * `rate_limit` a meaning RoadRunner does not (see the driver's docs):
 * `rateLimit` is a bound in jobs per second, so its default here is 0 (no
 * bound) where RoadRunner's library has 100, a number RoadRunner never applied.
 */
final class NatsCreateInfo extends CreateInfo
{
    public const PREFETCH_DEFAULT_VALUE = 100;
    public const DELIVER_NEW_DEFAULT_VALUE = true;
    public const RATE_LIMIT_DEFAULT_VALUE = 0;
    public const DELETE_STREAM_ON_STOP_DEFAULT_VALUE = false;
    public const DELETE_AFTER_ACK_DEFAULT_VALUE = false;
    public const PRIORITY_DEFAULT_VALUE = 2;

    public function __construct(
        string $name,
        public readonly string $subject,
        public readonly string $stream,
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        public readonly int $prefetch = self::PREFETCH_DEFAULT_VALUE,
        public readonly bool $deliverNew = self::DELIVER_NEW_DEFAULT_VALUE,
        public readonly int $rateLimit = self::RATE_LIMIT_DEFAULT_VALUE,
        public readonly bool $deleteStreamOnStop = self::DELETE_STREAM_ON_STOP_DEFAULT_VALUE,
        public readonly bool $deleteAfterAck = self::DELETE_AFTER_ACK_DEFAULT_VALUE,
    ) {
        parent::__construct(Driver::NATS, $name, $priority);
        if ($prefetch < 1) {
            throw new \InvalidArgumentException(\sprintf('prefetch must be >= 1, got %d', $prefetch));
        }
        if ($rateLimit < 0) {
            throw new \InvalidArgumentException(\sprintf('rateLimit must be >= 0, got %d', $rateLimit));
        }
        if ($subject === '') {
            throw new \InvalidArgumentException('subject must not be empty');
        }
        if ($stream === '') {
            throw new \InvalidArgumentException('stream must not be empty');
        }
    }

    public function toArray(): array
    {
        return parent::toArray() + [
            'prefetch' => $this->prefetch,
            'subject' => $this->subject,
            'deliver_new' => $this->deliverNew,
            'rate_limit' => $this->rateLimit,
            'stream' => $this->stream,
            'delete_stream_on_stop' => $this->deleteStreamOnStop,
            'delete_after_ack' => $this->deleteAfterAck,
        ];
    }
}
