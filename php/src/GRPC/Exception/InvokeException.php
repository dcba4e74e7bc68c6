<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Exception;

use Fastrr\GRPC\StatusCode;

/** UNAVAILABLE: a method could not be invoked (the Invoker uses INTERNAL for messages that do not decode or encode). */
class InvokeException extends GRPCException
{
    protected const CODE = StatusCode::UNAVAILABLE;
}
