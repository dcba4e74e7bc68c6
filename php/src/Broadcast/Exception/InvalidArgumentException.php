<?php

declare(strict_types=1);

namespace Fastrr\Broadcast\Exception;

/** No topics or no messages given (a BroadcastException, as in roadrunner-php/broadcast). */
class InvalidArgumentException extends BroadcastException
{
}
