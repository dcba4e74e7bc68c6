<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.Stats { repeated Stat stats = 1; }`: the answer of `jobs.Stat`.
 */
final class Stats extends Message
{
    protected const FIELDS = [1 => ['stats', Stat::class, 'repeated']];

    /** @var list<Stat> */
    public array $stats = [];

    /** @return list<Stat> */
    public function getStats(): array
    {
        return $this->stats;
    }
}
