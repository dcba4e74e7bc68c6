<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

/**
 * A task the server accepted (returned by Queue::push/dispatch), or received.
 */
class QueuedTask extends Task implements QueuedTaskInterface
{
    /**
     * @param array<string, list<string>> $headers
     */
    public function __construct(
        protected readonly string $id,
        protected readonly string $pipeline,
        string $name,
        string|\Stringable $payload,
        array $headers = [],
    ) {
        parent::__construct($name, $payload, $headers);
    }

    public function getId(): string
    {
        return $this->id;
    }

    public function getPipeline(): string
    {
        return $this->pipeline;
    }
}
