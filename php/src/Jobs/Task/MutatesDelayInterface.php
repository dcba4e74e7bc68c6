<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

interface MutatesDelayInterface
{
    /** A copy with the delay (seconds) set. */
    public function withDelay(int $seconds): self;
}
