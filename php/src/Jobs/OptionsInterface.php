<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

interface OptionsInterface
{
    public const DEFAULT_DELAY = 0;

    /** 0: the server uses the pipeline's priority. */
    public const DEFAULT_PRIORITY = 0;

    public const DEFAULT_AUTO_ACK = false;

    /** Seconds before the job may run. */
    public function getDelay(): int;

    /** Lower runs first; 0 takes the pipeline's. */
    public function getPriority(): int;

    /** Ack when the job is handed out rather than after it ran. */
    public function getAutoAck(): bool;
}
