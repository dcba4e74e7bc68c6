<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

use Fastrr\Jobs\DTO\V1\Pipelines;
use Fastrr\Jobs\DTO\V1\Stat;
use Fastrr\Jobs\DTO\V1\Stats;
use Fastrr\Jobs\Exception\JobsException;
use Fastrr\Jobs\Queue\Pipeline;
use Fastrr\Jobs\Task\PreparedTask;
use Fastrr\Jobs\Task\PreparedTaskInterface;
use Fastrr\Jobs\Task\ProvidesHeadersInterface;
use Fastrr\Jobs\Task\QueuedTaskInterface;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\RPCInterface;

/**
 * One pipeline, from the producer's side:
 *
 *   $queue = $jobs->connect('emails');
 *   $task = $queue->push('App\\SendMail', '{"to":"a@b.c"}', new Options(delay: 60));
 *   $task->getId();
 *
 * Pushing to a pipeline the server does not know fails with a JobsException
 * ("no such pipeline, requested: X" on RoadRunner).
 */
final class Queue implements QueueInterface
{
    private readonly RPCInterface $rpc;
    private readonly Pipeline $pipeline;
    private OptionsInterface $options;

    /**
     * @param null|callable(): string $ids task id generator (for tests); UUIDv4 by default
     */
    public function __construct(
        public readonly string $name,
        RPCInterface $rpc,
        ?OptionsInterface $options = null,
        ?callable $ids = null,
    ) {
        if ($name === '') {
            throw new \InvalidArgumentException('a queue (pipeline) name must not be empty');
        }
        $this->rpc = $rpc->withCodec(new ProtobufCodec());
        $this->pipeline = new Pipeline($name, $this->rpc, $ids);
        $this->options = $options ?? new Options();
    }

    public function __clone()
    {
        $this->options = clone $this->options;
    }

    public function getName(): string
    {
        return $this->name;
    }

    public function getDefaultOptions(): OptionsInterface
    {
        return $this->options;
    }

    public function withDefaultOptions(?OptionsInterface $options = null): self
    {
        $self = clone $this;
        $self->options = $options ?? new Options();
        return $self;
    }

    public function push(string $name, string|\Stringable $payload, ?OptionsInterface $options = null): QueuedTaskInterface
    {
        return $this->dispatch($this->create($name, $payload, $options));
    }

    /**
     * A task with this queue's default options merged with $options, to be
     * changed further (withHeader, withDelay, ...) and sent with dispatch().
     */
    public function create(string $name, string|\Stringable $payload, ?OptionsInterface $options = null): PreparedTaskInterface
    {
        if (\method_exists($this->options, 'mergeOptional')) {
            $options = $this->options->mergeOptional($options);
        }
        return new PreparedTask(
            $name,
            $payload,
            $options,
            $options instanceof ProvidesHeadersInterface ? $options->getHeaders() : [],
        );
    }

    public function dispatch(PreparedTaskInterface $task): QueuedTaskInterface
    {
        return $this->pipeline->send($task);
    }

    /**
     * Sends the tasks in one `jobs.PushBatch`. RoadRunner pushes them one by
     * one and stops at the first error, keeping the ones pushed before it.
     *
     * @return list<QueuedTaskInterface>
     */
    public function dispatchMany(PreparedTaskInterface ...$tasks): array
    {
        return $this->pipeline->sendMany($tasks);
    }

    public function pause(): void
    {
        $this->call('jobs.Pause', new Pipelines(['pipelines' => [$this->name]]));
    }

    public function resume(): void
    {
        $this->call('jobs.Resume', new Pipelines(['pipelines' => [$this->name]]));
    }

    /**
     * True when the server reports the pipeline as not ready (paused, or never started).
     */
    public function isPaused(): bool
    {
        $stat = $this->getPipelineStat();
        return $stat !== null && !$stat->getReady();
    }

    /**
     * This pipeline's row of `jobs.Stat`, null when the server has none.
     *
     * @throws JobsException
     */
    public function getPipelineStat(): ?Stat
    {
        $stats = $this->call('jobs.Stat', '', Stats::class);
        \assert($stats instanceof Stats);
        foreach ($stats->getStats() as $stat) {
            if ($stat->getPipeline() === $this->name) {
                return $stat;
            }
        }
        return null;
    }

    private function call(string $method, mixed $request, ?string $answer = null): mixed
    {
        try {
            return $this->rpc->call($method, $request, $answer);
        } catch (\Throwable $e) {
            throw new JobsException($e->getMessage(), (int)$e->getCode(), $e);
        }
    }
}
