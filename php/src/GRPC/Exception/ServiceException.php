<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Exception;

use Fastrr\GRPC\StatusCode;

/** INTERNAL: a service that cannot be registered. */
class ServiceException extends GRPCException
{
    protected const CODE = StatusCode::INTERNAL;
}
