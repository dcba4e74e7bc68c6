<?php

declare(strict_types=1);

namespace Fastrr;

/**
 * One message between server and worker: a context ("header") and a body.
 *
 * The argument order (body first) is the one RoadRunner's PHP library uses, so
 * code written for it keeps working.
 */
final class Payload
{
    public function __construct(
        /** The body: HTTP request/response body, job payload, ... */
        public readonly string $body = '',
        /** The context: the request/response metadata, usually JSON */
        public readonly string $header = '',
        /** False on a response chunk that more chunks follow (STREAM bit) */
        public readonly bool $eos = true,
    ) {
    }
}
