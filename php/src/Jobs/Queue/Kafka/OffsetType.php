<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\Kafka;

/** Where a consumer starts when its group has no committed offset (WithEpoch: refused by fastrr). */
enum OffsetType: string
{
    case At = 'At';
    case AfterMilli = 'AfterMilli';
    case AtEnd = 'AtEnd';
    case AtStart = 'AtStart';
    case Relative = 'Relative';
    case WithEpoch = 'WithEpoch';
}
