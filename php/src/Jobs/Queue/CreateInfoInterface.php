<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * What Jobs::create() declares: toArray() becomes the `jobs.Declare` map.
 */
interface CreateInfoInterface extends \JsonSerializable
{
    public function getName(): string;

    public function getDriver(): Driver;

    /** @return array<string, mixed> */
    public function toArray(): array;
}
