<?php

declare(strict_types=1);

namespace Fastrr\RPC;

/**
 * Encodes call payloads and decodes results; getIndex() is the frame flag
 * that names the codec on the wire (Frame::CODEC_*).
 */
interface CodecInterface
{
    public function getIndex(): int;

    public function encode(mixed $payload): string;

    public function decode(string $payload, mixed $options = null): mixed;
}
