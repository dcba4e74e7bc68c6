<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

abstract class Task implements TaskInterface
{
    use HeadersTrait;

    /**
     * @param array<string, list<string>> $headers
     */
    public function __construct(
        protected readonly string $name,
        protected readonly string|\Stringable $payload,
        array $headers = [],
    ) {
        if ($name === '') {
            throw new \InvalidArgumentException('a task name must not be empty');
        }
        $this->headers = $headers;
    }

    public function getName(): string
    {
        return $this->name;
    }

    public function getPayload(): string
    {
        return (string)$this->payload;
    }
}
