<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Exception;

/**
 * An exception that ends a call with a gRPC status: getCode() is the
 * StatusCode, getMessage() the status message, getDetails() protobuf
 * messages sent packed in google.protobuf.Any (grpc-status-details-bin).
 */
interface GRPCExceptionInterface extends \Throwable
{
    /** @return int */
    #[\ReturnTypeWillChange]
    public function getCode();

    /** @return list<\Google\Protobuf\Internal\Message> */
    public function getDetails(): array;
}
