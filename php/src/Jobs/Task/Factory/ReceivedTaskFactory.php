<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task\Factory;

use Fastrr\Jobs\Exception\ReceivedTaskException;
use Fastrr\Jobs\Exception\SerializationException;
use Fastrr\Jobs\Queue\Driver;
use Fastrr\Jobs\Task\KafkaReceivedTask;
use Fastrr\Jobs\Task\ReceivedTask;
use Fastrr\Jobs\Task\ReceivedTaskInterface;
use Fastrr\Payload;
use Fastrr\Worker;

/**
 * Builds a ReceivedTask from a delivery: the context (JSON) is
 *
 *   {"id", "job", "driver", "headers": {name: [values]} | null, "pipeline", "queue"?, ...}
 *
 * and the body is the payload as pushed. `id` and `job` are required;
 * `driver`, `pipeline` and `queue` default to "unknown", as in RoadRunner's
 * PHP library. Header values that are not lists are read as one value.
 * A kafka delivery (driver "kafka") becomes a KafkaReceivedTask carrying
 * the context's `topic` (default: the queue), `partition` and `offset`.
 */
final class ReceivedTaskFactory
{
    public function __construct(private readonly Worker $worker)
    {
    }

    /**
     * @throws ReceivedTaskException
     * @throws SerializationException
     */
    public function create(Payload $payload): ReceivedTaskInterface
    {
        if ($payload->header === '') {
            throw new ReceivedTaskException('Task payload does not have a valid header.');
        }
        try {
            $ctx = \json_decode($payload->header, true, 512, \JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new SerializationException('invalid task context: ' . $e->getMessage(), (int)$e->getCode(), $e);
        }
        if (!\is_array($ctx)) {
            throw new ReceivedTaskException('the task context is not a JSON object');
        }
        foreach (['id', 'job'] as $key) {
            if (!isset($ctx[$key]) || !\is_scalar($ctx[$key]) || (string)$ctx[$key] === '') {
                throw new ReceivedTaskException(\sprintf('the task context has no "%s"', $key));
            }
        }

        $headers = [];
        foreach ((array)($ctx['headers'] ?? []) as $name => $values) {
            $headers[(string)$name] = \array_map(
                static fn (mixed $v): string => \is_scalar($v) ? (string)$v : (string)\json_encode($v),
                \is_array($values) ? \array_values($values) : [$values],
            );
        }

        $driver = Driver::tryFrom((string)($ctx['driver'] ?? 'unknown')) ?? Driver::Unknown;
        if ($driver === Driver::Kafka) {
            return new KafkaReceivedTask(
                $this->worker,
                (string)$ctx['id'],
                self::text($ctx, 'pipeline'),
                (string)$ctx['job'],
                self::text($ctx, 'queue'),
                isset($ctx['topic']) && \is_scalar($ctx['topic']) && (string)$ctx['topic'] !== ''
                    ? (string)$ctx['topic'] : self::text($ctx, 'queue'),
                self::number($ctx, 'partition'),
                self::number($ctx, 'offset'),
                $payload->body,
                $headers,
            );
        }

        return new ReceivedTask(
            $this->worker,
            (string)$ctx['id'],
            $driver,
            self::text($ctx, 'pipeline'),
            (string)$ctx['job'],
            self::text($ctx, 'queue'),
            $payload->body,
            $headers,
        );
    }

    /** @param array<string, mixed> $ctx */
    private static function number(array $ctx, string $key): int
    {
        $value = $ctx[$key] ?? 0;
        return \is_int($value) || (\is_string($value) && \is_numeric($value)) ? (int)$value : 0;
    }

    /** @param array<string, mixed> $ctx */
    private static function text(array $ctx, string $key): string
    {
        $value = $ctx[$key] ?? null;
        return \is_scalar($value) && (string)$value !== '' ? (string)$value : 'unknown';
    }
}
