<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

use Fastrr\Jobs\Exception\JobsException;
use Fastrr\Jobs\Queue\CreateInfoInterface;

/**
 * @extends \IteratorAggregate<string, QueueInterface>
 */
interface JobsInterface extends \IteratorAggregate, \Countable
{
    public function connect(string $queue): QueueInterface;

    /** @throws JobsException */
    public function create(CreateInfoInterface $info): QueueInterface;

    /** @throws JobsException */
    public function pause(QueueInterface|string $queue, QueueInterface|string ...$queues): void;

    /** @throws JobsException */
    public function resume(QueueInterface|string $queue, QueueInterface|string ...$queues): void;
}
