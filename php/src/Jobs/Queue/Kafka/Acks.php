<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\Kafka;

/** producer_options.required_acks */
enum Acks: string
{
    case NoAck = 'NoAck';
    case LeaderAck = 'LeaderAck';
    case AllISRAck = 'AllISRAck';
}
