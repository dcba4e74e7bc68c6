<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

use Fastrr\Jobs\DTO\V1\HeaderValue;
use Fastrr\Jobs\DTO\V1\Job;
use Fastrr\Jobs\DTO\V1\Options as OptionsMessage;
use Fastrr\Jobs\DTO\V1\PushBatchRequest;
use Fastrr\Jobs\DTO\V1\PushRequest;
use Fastrr\Jobs\Exception\JobsException;
use Fastrr\Jobs\OptionsAwareInterface;
use Fastrr\Jobs\OptionsInterface;
use Fastrr\Jobs\Task\PreparedTaskInterface;
use Fastrr\Jobs\Task\QueuedTask;
use Fastrr\RPC\RPCInterface;

/**
 * Sends prepared tasks of one pipeline: `jobs.Push` / `jobs.PushBatch`.
 *
 * Each task becomes a `jobs.v1.Job`: `job` = the task name, `id` = a new
 * UUIDv4, `payload`, the headers that have at least one value, and options
 * {priority, delay, auto_ack, pipeline = this pipeline}.
 *
 * @internal used by Queue
 */
final class Pipeline
{
    /** @var \Closure(): string */
    private \Closure $ids;

    /**
     * @param RPCInterface $rpc already set to the protobuf codec
     * @param null|callable(): string $ids the task id generator (tests); UUIDv4 by default
     */
    public function __construct(
        private readonly string $name,
        private readonly RPCInterface $rpc,
        ?callable $ids = null,
    ) {
        $this->ids = $ids === null ? self::uuid4(...) : \Closure::fromCallable($ids);
    }

    /**
     * @throws JobsException
     */
    public function send(PreparedTaskInterface $task): QueuedTask
    {
        $job = $this->toJob($task);
        $this->call('jobs.Push', new PushRequest(['job' => $job]));
        return $this->queued($job, $task);
    }

    /**
     * @param iterable<PreparedTaskInterface> $tasks
     * @return list<QueuedTask>
     * @throws JobsException
     */
    public function sendMany(iterable $tasks): array
    {
        $jobs = $queued = [];
        foreach ($tasks as $task) {
            $jobs[] = $job = $this->toJob($task);
            $queued[] = $this->queued($job, $task);
        }
        $this->call('jobs.PushBatch', new PushBatchRequest(['jobs' => $jobs]));
        return $queued;
    }

    /**
     * A random (version 4) UUID: 8-4-4-4-12 lowercase hex.
     */
    public static function uuid4(): string
    {
        $b = \random_bytes(16);
        $b[6] = \chr((\ord($b[6]) & 0x0F) | 0x40);
        $b[8] = \chr((\ord($b[8]) & 0x3F) | 0x80);
        return \vsprintf('%s%s-%s-%s-%s-%s%s%s', \str_split(\bin2hex($b), 4));
    }

    private function toJob(PreparedTaskInterface $task): Job
    {
        $headers = [];
        foreach ($task->getHeaders() as $name => $values) {
            if (\count($values) > 0) {
                $headers[(string)$name] = new HeaderValue(['value' => $values]);
            }
        }
        $options = $task instanceof OptionsAwareInterface ? $task->getOptions() : $task;
        return new Job([
            'job' => $task->getName(),
            'id' => ($this->ids)(),
            'payload' => $task->getPayload(),
            'headers' => $headers,
            'options' => self::options($options, $this->name),
        ]);
    }

    private static function options(OptionsInterface $options, string $pipeline): OptionsMessage
    {
        $data = \method_exists($options, 'toArray') ? $options->toArray() : [
            'priority' => $options->getPriority(),
            'delay' => $options->getDelay(),
            'auto_ack' => $options->getAutoAck(),
        ];
        return new OptionsMessage(['pipeline' => $pipeline] + $data);
    }

    private function queued(Job $job, PreparedTaskInterface $task): QueuedTask
    {
        return new QueuedTask($job->id, $this->name, $task->getName(), $task->getPayload(), $task->getHeaders());
    }

    private function call(string $method, object $request): void
    {
        try {
            $this->rpc->call($method, $request);
        } catch (\Throwable $e) {
            throw new JobsException($e->getMessage(), (int)$e->getCode(), $e);
        }
    }
}
