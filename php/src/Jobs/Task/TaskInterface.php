<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

interface TaskInterface extends ProvidesHeadersInterface
{
    /** The task (job) name, usually a handler class. */
    public function getName(): string;

    public function getPayload(): string;
}
