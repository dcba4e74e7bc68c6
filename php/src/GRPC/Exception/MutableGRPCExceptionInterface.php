<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Exception;

use Google\Protobuf\Internal\Message;

interface MutableGRPCExceptionInterface extends GRPCExceptionInterface
{
    /** @param list<Message> $details */
    public function setDetails(array $details): void;

    public function addDetails(Message $message): void;
}
