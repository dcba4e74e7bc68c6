<?php

declare(strict_types=1);

namespace Fastrr\Relay;

/**
 * Transport failure: the peer went away, a read or write failed, or the bytes
 * on the wire are not a valid goridge frame.
 */
class RelayException extends \RuntimeException
{
}
