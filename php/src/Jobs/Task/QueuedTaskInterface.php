<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

interface QueuedTaskInterface extends TaskInterface
{
    public function getId(): string;

    public function getPipeline(): string;
}
