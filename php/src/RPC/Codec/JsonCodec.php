<?php

declare(strict_types=1);

namespace Fastrr\RPC\Codec;

use Fastrr\Frame;
use Fastrr\RPC\CodecInterface;
use Fastrr\RPC\Exception\RPCException;

/**
 * JSON bodies; results decode to associative arrays.
 */
final class JsonCodec implements CodecInterface
{
    public function getIndex(): int
    {
        return Frame::CODEC_JSON;
    }

    public function encode(mixed $payload): string
    {
        try {
            return \json_encode($payload, \JSON_THROW_ON_ERROR | \JSON_UNESCAPED_SLASHES | \JSON_UNESCAPED_UNICODE);
        } catch (\JsonException $e) {
            throw new RPCException('cannot encode the payload as JSON: ' . $e->getMessage(), 0, $e);
        }
    }

    public function decode(string $payload, mixed $options = null): mixed
    {
        if ($payload === '') {
            return null;
        }
        try {
            return \json_decode($payload, true, 512, \JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new RPCException('invalid JSON in the RPC answer: ' . $e->getMessage(), 0, $e);
        }
    }
}
