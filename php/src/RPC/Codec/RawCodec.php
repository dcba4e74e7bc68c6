<?php

declare(strict_types=1);

namespace Fastrr\RPC\Codec;

use Fastrr\Frame;
use Fastrr\RPC\CodecInterface;
use Fastrr\RPC\Exception\RPCException;

/**
 * Bytes in, bytes out (for methods that take or return raw data, e.g. rpc.Config).
 */
final class RawCodec implements CodecInterface
{
    public function getIndex(): int
    {
        return Frame::CODEC_RAW;
    }

    public function encode(mixed $payload): string
    {
        if ($payload === null || \is_bool($payload)) {
            return '';
        }
        if (!\is_string($payload) && !$payload instanceof \Stringable) {
            throw new RPCException(\sprintf('the raw codec sends strings only, got %s', \get_debug_type($payload)));
        }
        return (string)$payload;
    }

    public function decode(string $payload, mixed $options = null): string
    {
        return $payload;
    }
}
