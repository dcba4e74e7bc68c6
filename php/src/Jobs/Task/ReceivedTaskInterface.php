<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

use Fastrr\Jobs\Exception\JobsException;
use Fastrr\Jobs\Queue\Driver;

/**
 * A task handed to this worker. Exactly one of ack(), nack(), requeue() (or
 * the older complete(), fail()) answers it; later calls do nothing.
 */
interface ReceivedTaskInterface extends
    QueuedTaskInterface,
    WritableHeadersInterface,
    MutatesDelayInterface
{
    /** @throws JobsException */
    public function ack(): void;

    /**
     * The driver's negative acknowledgement; with $redelivery the driver puts
     * the task back (after withDelay()'s seconds), if it can.
     *
     * @throws JobsException
     */
    public function nack(string|\Stringable|\Throwable $message, bool $redelivery = false): void;

    /**
     * Pushes the task again, with its headers (as changed by withHeader())
     * and withDelay()'s delay.
     *
     * @throws JobsException
     */
    public function requeue(string|\Stringable|\Throwable $message): void;

    /** @deprecated use ack() */
    public function complete(): void;

    /** @deprecated use nack() or requeue() */
    public function fail(string|\Stringable|\Throwable $error, bool $requeue = false): void;

    public function isCompleted(): bool;

    public function isSuccessful(): bool;

    public function isFails(): bool;

    /** The broker's queue name ("unknown" when the server does not say). */
    public function getQueue(): string;

    public function getDriver(): Driver;
}
