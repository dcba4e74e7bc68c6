<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

use Fastrr\GRPC\Exception\GRPCExceptionInterface;

/** Runs one method: request bytes in, reply bytes out. */
interface InvokerInterface
{
    /** @throws GRPCExceptionInterface */
    public function invoke(ServiceInterface $service, Method $method, ContextInterface $ctx, ?string $input): string;
}
