<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

/**
 * The `type` of a worker's reply `{"type":N,"data":...}`.
 */
interface Type
{
    /** complete(): ack. Deprecated by RoadRunner in favour of ACK. */
    public const SUCCESS = 0;

    /** fail(): requeue when asked, otherwise the job is dropped. Deprecated in favour of NACK/REQUEUE. */
    public const ERROR = 1;

    public const ACK = 2;

    public const NACK = 3;

    public const REQUEUE = 4;
}
