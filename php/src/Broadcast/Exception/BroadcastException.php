<?php

declare(strict_types=1);

namespace Fastrr\Broadcast\Exception;

/** A publish failed: the server's text (e.g. its Redis is down) is the message. */
class BroadcastException extends \RuntimeException
{
}
