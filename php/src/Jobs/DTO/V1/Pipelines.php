<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.Pipelines { repeated string pipelines = 1; }`: the argument of
 * `jobs.Pause`/`Resume`/`Destroy`, the answer of `jobs.List`/`Destroy`.
 */
final class Pipelines extends Message
{
    protected const FIELDS = [1 => ['pipelines', 'string', 'repeated']];

    /** @var list<string> */
    public array $pipelines = [];

    /** @return list<string> */
    public function getPipelines(): array
    {
        return $this->pipelines;
    }
}
