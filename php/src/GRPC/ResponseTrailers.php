<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

/**
 * Metadata sent after the reply, with the status: `$ctx->getValue(ResponseTrailers::class)->set(...)`.
 */
final class ResponseTrailers extends ResponseHeaders
{
    public function packTrailers(): string
    {
        return self::pack($this->values);
    }
}
