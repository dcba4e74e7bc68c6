<?php

declare(strict_types=1);

namespace Fastrr\RPC\Exception;

/**
 * The call could not be made or its answer was not a valid RPC frame.
 */
class RPCException extends \RuntimeException
{
}
