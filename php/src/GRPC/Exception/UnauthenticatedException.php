<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Exception;

use Fastrr\GRPC\StatusCode;

/** UNAUTHENTICATED: the caller's credentials are missing or wrong. */
class UnauthenticatedException extends GRPCException
{
    protected const CODE = StatusCode::UNAUTHENTICATED;
}
