<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

use Fastrr\Jobs\Exception\ReceivedTaskException;
use Fastrr\Jobs\Exception\SerializationException;
use Fastrr\Jobs\Task\Factory\ReceivedTaskFactory;
use Fastrr\Jobs\Task\ReceivedTaskInterface;
use Fastrr\Worker;

/**
 * The jobs worker loop (the server starts it with RR_MODE=jobs):
 *
 *   $consumer = new Consumer();                // or new Consumer(Worker::create())
 *   while ($task = $consumer->waitTask()) {
 *       try {
 *           handle($task->getName(), $task->getPayload());
 *           $task->ack();
 *       } catch (\Throwable $e) {
 *           $task->withDelay(5)->requeue($e);
 *       }
 *   }
 *
 * A delivery is a frame with options [context length] (flags CODEC_RAW) whose
 * payload is the JSON context followed by the task's payload.
 */
final class Consumer implements ConsumerInterface
{
    private readonly Worker $worker;
    private readonly ReceivedTaskFactory $factory;

    public function __construct(?Worker $worker = null, ?ReceivedTaskFactory $factory = null)
    {
        $this->worker = $worker ?? Worker::create();
        $this->factory = $factory ?? new ReceivedTaskFactory($this->worker);
    }

    public function getWorker(): Worker
    {
        return $this->worker;
    }

    /**
     * A delivery whose context cannot be read is answered with an error frame
     * (the server nacks it) before the exception is thrown, so the worker
     * stays in step with the server and may go on waiting.
     *
     * @throws ReceivedTaskException
     * @throws SerializationException
     */
    public function waitTask(): ?ReceivedTaskInterface
    {
        $payload = $this->worker->waitPayload();
        if ($payload === null) {
            return null;
        }
        try {
            return $this->factory->create($payload);
        } catch (ReceivedTaskException | SerializationException $e) {
            $this->worker->error($e->getMessage());
            throw $e;
        }
    }
}
