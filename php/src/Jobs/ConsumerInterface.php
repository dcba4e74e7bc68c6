<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

use Fastrr\Jobs\Task\ReceivedTaskInterface;

interface ConsumerInterface
{
    /**
     * The next task, or null when the server asks the worker to stop.
     */
    public function waitTask(): ?ReceivedTaskInterface;
}
