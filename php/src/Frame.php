<?php

declare(strict_types=1);

namespace Fastrr;

use Fastrr\Relay\RelayException;

/**
 * One goridge v3 frame.
 *
 * Wire layout (all integers little-endian):
 *
 *   0      1 byte   0x10 | HL        (version 1 in the high nibble, HL = header length in 32-bit words)
 *   1      1 byte   flags            (CONTROL, codec bits, ERROR)
 *   2      4 bytes  payload length   (options not counted)
 *   6      4 bytes  CRC-32 of bytes 0..5 only
 *   10     1 byte   stream bits      (STREAM, STOP, PING, PONG)
 *   11     1 byte   reserved, 0
 *   12     4*N      options, N = HL - 3 (0..10)
 *   12+4N  payload
 *
 * We always write 'V' (explicit little-endian) rather than the host order 'L'.
 */
final class Frame
{
    /** @var int bytes before the options */
    public const HEADER_SIZE = 12;

    /** @var int the most options one header can carry (HL would reach 14 otherwise) */
    public const MAX_OPTIONS = 10;

    // Byte 1: flags.
    public const CONTROL = 0x01;
    public const CODEC_RAW = 0x04;
    public const CODEC_JSON = 0x08;
    public const CODEC_MSGPACK = 0x10;
    public const CODEC_GOB = 0x20;
    public const ERROR = 0x40;
    public const CODEC_PROTO = 0x80;

    // Byte 10: stream bits.
    /** worker → server: more frames of this response follow */
    public const STREAM = 0x01;
    /** server → worker: cancel the stream being sent */
    public const STOP = 0x02;
    /** worker → server: answer this chunk with PONG */
    public const PING = 0x04;
    /** server → worker: answer to PING */
    public const PONG = 0x08;

    /**
     * @param list<int> $options unsigned 32-bit words
     */
    public function __construct(
        public string $payload = '',
        public array $options = [],
        public int $flags = 0,
        public int $byte10 = 0,
    ) {
    }

    /**
     * The frame as bytes, ready for the relay.
     */
    public function encode(): string
    {
        return self::pack($this->payload, $this->options, $this->flags, $this->byte10);
    }

    /**
     * Encodes a frame without building an object first.
     *
     * @param list<int> $options
     */
    public static function pack(string $payload, array $options = [], int $flags = 0, int $byte10 = 0): string
    {
        $n = \count($options);
        if ($n === 0) {
            $head = \pack('CCV', 0x13, $flags, \strlen($payload));
            return $head . \pack('VCC', \crc32($head), $byte10, 0) . $payload;
        }
        if ($n > self::MAX_OPTIONS) {
            throw new \InvalidArgumentException(\sprintf('a frame carries at most %d options, got %d', self::MAX_OPTIONS, $n));
        }
        $head = \pack('CCV', 0x10 | (3 + $n), $flags, \strlen($payload));
        return $head . \pack('VCC', \crc32($head), $byte10, 0) . \pack('V*', ...$options) . $payload;
    }

    /**
     * Parses the fixed 12-byte header.
     *
     * Returns [flags, payload length, option count, byte10]. Unlike RoadRunner's PHP
     * relays we check the version nibble and the CRC: they cost almost nothing and
     * turn a desynchronised stream into a clear error instead of a huge bogus read.
     *
     * @return array{0:int,1:int,2:int,3:int}
     * @throws RelayException
     */
    public static function parseHeader(string $header): array
    {
        if (\strlen($header) !== self::HEADER_SIZE) {
            throw new RelayException(\sprintf('frame header must be 12 bytes, got %d', \strlen($header)));
        }
        $h = \unpack('Cv/Cf/Vlen/Vcrc/Cb10', $header);
        $v = $h['v'];
        if (($v & 0xF0) !== 0x10 || ($v & 0x0F) < 3 || ($v & 0x0F) > 3 + self::MAX_OPTIONS) {
            throw new RelayException(\sprintf(
                'invalid frame header (version/length byte 0x%02x): %s',
                $v,
                \bin2hex($header),
            ));
        }
        if ($h['crc'] !== \crc32(\substr($header, 0, 6))) {
            throw new RelayException('frame header CRC mismatch: ' . \bin2hex($header));
        }
        return [$h['f'], $h['len'], ($v & 0x0F) - 3, $h['b10']];
    }

    /**
     * Decodes one complete frame (header, options, payload) from a byte string.
     *
     * @throws RelayException when the bytes are not exactly one valid frame
     */
    public static function decode(string $bytes): self
    {
        [$flags, $len, $nopt, $byte10] = self::parseHeader(\substr($bytes, 0, self::HEADER_SIZE));
        $optBytes = $nopt * 4;
        if (\strlen($bytes) !== self::HEADER_SIZE + $optBytes + $len) {
            throw new RelayException(\sprintf(
                'frame length mismatch: header says %d bytes after the header, got %d',
                $optBytes + $len,
                \strlen($bytes) - self::HEADER_SIZE,
            ));
        }
        return self::fromParts($flags, $nopt, $byte10, (string)\substr($bytes, self::HEADER_SIZE));
    }

    /**
     * Builds a frame from a parsed header and the bytes that followed it
     * (options then payload), as read by a relay.
     *
     * @internal
     */
    public static function fromParts(int $flags, int $nopt, int $byte10, string $rest): self
    {
        if ($nopt === 0) {
            return new self($rest, [], $flags, $byte10);
        }
        if ($nopt === 1) {
            return new self((string)\substr($rest, 4), [\unpack('V', $rest)[1]], $flags, $byte10);
        }
        return new self(
            (string)\substr($rest, $nopt * 4),
            \array_values(\unpack('V' . $nopt, $rest)),
            $flags,
            $byte10,
        );
    }
}
