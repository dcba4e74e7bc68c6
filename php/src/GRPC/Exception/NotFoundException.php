<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Exception;

use Fastrr\GRPC\StatusCode;

/** NOT_FOUND: the call names a service or method this worker does not serve. */
class NotFoundException extends InvokeException
{
    protected const CODE = StatusCode::NOT_FOUND;
}
