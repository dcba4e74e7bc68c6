<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Exception;

/**
 * A jobs call failed: the RPC error (unknown pipeline, ...) or the transport.
 */
class JobsException extends \Exception
{
}
