<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.PushBatchRequest { repeated Job jobs = 1; }`: the argument of `jobs.PushBatch`.
 */
final class PushBatchRequest extends Message
{
    protected const FIELDS = [1 => ['jobs', Job::class, 'repeated']];

    /** @var list<Job> */
    public array $jobs = [];

    /** @return list<Job> */
    public function getJobs(): array
    {
        return $this->jobs;
    }
}
