<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\AMQP;

/** An amqp pipeline's `exchange_type` (how the exchange routes a push to queues). */
enum ExchangeType: string
{
    case Direct = 'direct';
    case Fanout = 'fanout';
    case Topic = 'topic';
    case Headers = 'headers';
}
