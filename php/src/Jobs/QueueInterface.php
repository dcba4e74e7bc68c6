<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

use Fastrr\Jobs\Exception\JobsException;
use Fastrr\Jobs\Task\PreparedTaskInterface;
use Fastrr\Jobs\Task\QueuedTaskInterface;

interface QueueInterface
{
    public function getName(): string;

    public function getDefaultOptions(): OptionsInterface;

    public function withDefaultOptions(?OptionsInterface $options): self;

    /** @throws JobsException */
    public function push(string $name, string|\Stringable $payload, ?OptionsInterface $options = null): QueuedTaskInterface;

    public function create(string $name, string|\Stringable $payload, ?OptionsInterface $options = null): PreparedTaskInterface;

    /** @throws JobsException */
    public function dispatch(PreparedTaskInterface $task): QueuedTaskInterface;

    /**
     * @return iterable<QueuedTaskInterface>
     * @throws JobsException
     */
    public function dispatchMany(PreparedTaskInterface ...$tasks): iterable;

    /** @throws JobsException */
    public function pause(): void;

    /** @throws JobsException */
    public function resume(): void;

    /** @throws JobsException */
    public function isPaused(): bool;
}
