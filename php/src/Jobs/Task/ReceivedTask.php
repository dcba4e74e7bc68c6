<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

use Fastrr\Jobs\Exception\JobsException;
use Fastrr\Jobs\Exception\SerializationException;
use Fastrr\Jobs\Queue\Driver;
use Fastrr\Payload;
use Fastrr\Worker;

/**
 * A task received by a jobs worker. Its answer is one frame with options
 * [0] (empty context), flags 0, and the JSON body
 *
 *   ack()                    {"type":2,"data":[]}
 *   nack($m, $redelivery)    {"type":3,"data":{"message":$m,"requeue":$redelivery,"delay_seconds":N}}
 *   requeue($m)              {"type":4,"data":{"message":$m,"delay_seconds":N[,"headers":{...}]}}
 *   complete()               {"type":0,"data":[]}
 *   fail($e, $requeue)       {"type":1,"data":{"message":$e,"requeue":$requeue,"delay_seconds":N[,"headers":{...}]}}
 *
 * byte for byte what spiral/roadrunner-jobs sends (json_encode() with its
 * default escaping: "\/" and "\uXXXX"). N is set by withDelay(); "headers",
 * the whole header map with withHeader() changes, only when it is not empty.
 *
 * withDelay()/withHeader() return copies; the copies and the original share
 * one answered state, so answering through a copy also completes the
 * original (RoadRunner's PHP would let the original answer a second time).
 */
class ReceivedTask extends QueuedTask implements ReceivedTaskInterface
{
    use WritableHeadersTrait;

    private int $delay = 0;

    /** @var object{type: ?int} shared by the clones */
    private object $state;

    /**
     * @param array<string, list<string>> $headers
     */
    public function __construct(
        private readonly Worker $worker,
        string $id,
        private readonly Driver $driver,
        string $pipeline,
        string $job,
        private readonly string $queue,
        string $payload,
        array $headers = [],
    ) {
        parent::__construct($id, $pipeline, $job, $payload, $headers);
        $this->state = new class {
            public ?int $type = null;
        };
    }

    public function getDriver(): Driver
    {
        return $this->driver;
    }

    public function getQueue(): string
    {
        return $this->queue;
    }

    public function getDelay(): int
    {
        return $this->delay;
    }

    public function withDelay(int $seconds): static
    {
        if ($seconds < 0) {
            throw new \InvalidArgumentException(\sprintf('delay must be >= 0, got %d', $seconds));
        }
        $self = clone $this;
        $self->delay = $seconds;
        return $self;
    }

    public function ack(): void
    {
        $this->respond(Type::ACK);
    }

    public function nack(string|\Stringable|\Throwable $message, bool $redelivery = false): void
    {
        $this->respond(Type::NACK, [
            'message' => (string)$message,
            'requeue' => $redelivery,
            'delay_seconds' => $this->delay,
        ]);
    }

    public function requeue(string|\Stringable|\Throwable $message): void
    {
        $data = ['message' => (string)$message, 'delay_seconds' => $this->delay];
        if ($this->headers !== []) {
            $data['headers'] = (object)$this->headers;
        }
        $this->respond(Type::REQUEUE, $data);
    }

    /** @deprecated use ack() */
    public function complete(): void
    {
        $this->respond(Type::SUCCESS);
    }

    /** @deprecated use nack() or requeue() */
    public function fail(string|\Stringable|\Throwable $error, bool $requeue = false): void
    {
        $data = ['message' => (string)$error, 'requeue' => $requeue, 'delay_seconds' => $this->delay];
        if ($this->headers !== []) {
            $data['headers'] = (object)$this->headers;
        }
        $this->respond(Type::ERROR, $data);
    }

    public function isCompleted(): bool
    {
        return $this->state->type !== null;
    }

    public function isSuccessful(): bool
    {
        return $this->state->type === Type::SUCCESS || $this->state->type === Type::ACK;
    }

    public function isFails(): bool
    {
        return \in_array($this->state->type, [Type::ERROR, Type::NACK, Type::REQUEUE], true);
    }

    /**
     * The reply body for $type and $data, as respond() sends it.
     *
     * @param array<string, mixed> $data
     * @throws SerializationException
     */
    public static function replyBody(int $type, array $data = []): string
    {
        try {
            return \json_encode(['type' => $type, 'data' => $data], \JSON_THROW_ON_ERROR | \JSON_INVALID_UTF8_SUBSTITUTE);
        } catch (\JsonException $e) {
            throw new SerializationException($e->getMessage(), (int)$e->getCode(), $e);
        }
    }

    /**
     * @param array<string, mixed> $data
     * @throws JobsException
     */
    private function respond(int $type, array $data = []): void
    {
        if ($this->state->type !== null) {
            return;
        }
        $body = self::replyBody($type, $data);
        try {
            $this->worker->respond(new Payload($body));
        } catch (\Throwable $e) {
            throw new JobsException($e->getMessage(), (int)$e->getCode(), $e);
        }
        $this->state->type = $type;
    }
}
