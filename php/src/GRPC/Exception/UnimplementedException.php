<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Exception;

use Fastrr\GRPC\StatusCode;

/** UNIMPLEMENTED: the method exists but is not implemented. */
class UnimplementedException extends GRPCException
{
    protected const CODE = StatusCode::UNIMPLEMENTED;
}
