<?php

declare(strict_types=1);

namespace Fastrr\RPC\Exception;

/**
 * The server answered the call with an error (ERROR flag); the message carries its text.
 */
class ServiceException extends RPCException
{
}
