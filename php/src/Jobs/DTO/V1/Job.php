<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.Job`:
 *
 *   string job = 1 (the task name); string id = 2; bytes payload = 3;
 *   map<string, HeaderValue> headers = 4; Options options = 5
 *
 * `headers` may be given as name => list of strings; they are kept as HeaderValue.
 */
final class Job extends Message
{
    protected const FIELDS = [
        1 => ['job', 'string', ''],
        2 => ['id', 'string', ''],
        3 => ['payload', 'bytes', ''],
        4 => ['headers', HeaderValue::class, 'map'],
        5 => ['options', Options::class, ''],
    ];

    public string $job = '';
    public string $id = '';
    public string $payload = '';
    /** @var array<string, HeaderValue> */
    public array $headers = [];
    public ?Options $options = null;

    public function getJob(): string
    {
        return $this->job;
    }

    public function getId(): string
    {
        return $this->id;
    }

    public function getPayload(): string
    {
        return $this->payload;
    }

    /** @return array<string, HeaderValue> */
    public function getHeaders(): array
    {
        return $this->headers;
    }

    public function getOptions(): ?Options
    {
        return $this->options;
    }
}
