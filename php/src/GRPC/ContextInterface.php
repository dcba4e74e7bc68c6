<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

/**
 * A call's context: the incoming metadata (lower-case key => list of strings,
 * with ":peer.address" and, over TLS, ":peer.auth-type"), plus the objects the
 * server adds (ResponseHeaders::class, ResponseTrailers::class).
 */
interface ContextInterface
{
    /** A copy with `$key` set: contexts are values. */
    public function withValue(string $key, mixed $value): self;

    public function getValue(string $key): mixed;

    /** @return array<string, mixed> */
    public function getValues(): array;
}
