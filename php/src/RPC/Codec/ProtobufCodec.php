<?php

declare(strict_types=1);

namespace Fastrr\RPC\Codec;

use Fastrr\Frame;
use Fastrr\RPC\CodecInterface;
use Fastrr\RPC\Exception\RPCException;

/**
 * Protobuf bodies (frame flags CODEC_PROTO, 0x80), as spiral/goridge's
 * ProtobufCodec: the jobs.* and kv.* methods take and return serialized
 * messages.
 *
 * A message is any object with `serializeToString(): string` (fastrr's
 * `Fastrr\Jobs\DTO\V1\*`, or classes generated for google/protobuf); a string
 * is sent as it is ('' is an empty message). decode() fills the message class
 * (or object) given as $options through `mergeFromString()`, and returns the
 * raw bytes when $options names none.
 */
final class ProtobufCodec implements CodecInterface
{
    public function getIndex(): int
    {
        return Frame::CODEC_PROTO;
    }

    public function encode(mixed $payload): string
    {
        if ($payload === null) {
            return '';
        }
        if (\is_string($payload)) {
            return $payload;
        }
        if (\is_object($payload) && \method_exists($payload, 'serializeToString')) {
            return (string)$payload->serializeToString();
        }
        throw new RPCException(\sprintf(
            'the protobuf codec sends messages (serializeToString()) or strings, got %s',
            \get_debug_type($payload),
        ));
    }

    public function decode(string $payload, mixed $options = null): mixed
    {
        if (\is_string($options) && \class_exists($options) && \method_exists($options, 'mergeFromString')) {
            $options = new $options();
        }
        if (\is_object($options) && \method_exists($options, 'mergeFromString')) {
            try {
                $options->mergeFromString($payload);
            } catch (\Exception $e) {
                throw new RPCException(\sprintf(
                    'invalid protobuf %s in the RPC answer: %s',
                    $options::class,
                    $e->getMessage(),
                ), 0, $e);
            }
            return $options;
        }
        return $payload;
    }
}
