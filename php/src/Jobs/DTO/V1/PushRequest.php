<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.PushRequest { Job job = 1; }`: the argument of `jobs.Push`.
 */
final class PushRequest extends Message
{
    protected const FIELDS = [1 => ['job', Job::class, '']];

    public ?Job $job = null;

    public function getJob(): ?Job
    {
        return $this->job;
    }
}
