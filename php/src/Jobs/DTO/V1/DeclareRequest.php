<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.DeclareRequest { map<string, string> pipeline = 1; }`: the argument
 * of `jobs.Declare` (driver, name, priority and the driver's options, all strings).
 */
final class DeclareRequest extends Message
{
    protected const FIELDS = [1 => ['pipeline', 'string', 'map']];

    /** @var array<string, string> */
    public array $pipeline = [];

    /** @return array<string, string> */
    public function getPipeline(): array
    {
        return $this->pipeline;
    }
}
