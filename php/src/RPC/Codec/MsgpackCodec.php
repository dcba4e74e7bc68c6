<?php

declare(strict_types=1);

namespace Fastrr\RPC\Codec;

use Fastrr\Frame;
use Fastrr\RPC\CodecInterface;
use Fastrr\RPC\Exception\RPCException;

/**
 * MessagePack bodies. Uses ext-msgpack when it is loaded, otherwise the small
 * encoder/decoder below (nil, bool, int, float, str, bin, array, map; no ext types).
 * Strings that are not valid UTF-8 are sent as bin; lists as arrays, other
 * arrays as maps; decoded maps are associative arrays.
 */
final class MsgpackCodec implements CodecInterface
{
    public function getIndex(): int
    {
        return Frame::CODEC_MSGPACK;
    }

    public function encode(mixed $payload): string
    {
        if (\function_exists('msgpack_pack')) {
            return \msgpack_pack($payload);
        }
        return self::pack($payload);
    }

    public function decode(string $payload, mixed $options = null): mixed
    {
        if ($payload === '') {
            return null;
        }
        if (\function_exists('msgpack_unpack')) {
            return \msgpack_unpack($payload);
        }
        $offset = 0;
        $value = self::unpack($payload, $offset);
        if ($offset !== \strlen($payload)) {
            throw new RPCException(\sprintf('msgpack: %d bytes left after the value', \strlen($payload) - $offset));
        }
        return $value;
    }

    public static function pack(mixed $v): string
    {
        if ($v === null) {
            return "\xc0";
        }
        if (\is_bool($v)) {
            return $v ? "\xc3" : "\xc2";
        }
        if (\is_int($v)) {
            if ($v >= 0) {
                return match (true) {
                    $v < 0x80 => \chr($v),
                    $v <= 0xFF => "\xcc" . \chr($v),
                    $v <= 0xFFFF => "\xcd" . \pack('n', $v),
                    $v <= 0xFFFFFFFF => "\xce" . \pack('N', $v),
                    default => "\xcf" . \pack('J', $v),
                };
            }
            return match (true) {
                $v >= -32 => \chr($v & 0xFF),
                $v >= -0x80 => "\xd0" . \chr($v & 0xFF),
                $v >= -0x8000 => "\xd1" . \pack('n', $v & 0xFFFF),
                $v >= -0x80000000 => "\xd2" . \pack('N', $v & 0xFFFFFFFF),
                default => "\xd3" . \pack('J', $v),
            };
        }
        if (\is_float($v)) {
            return "\xcb" . \pack('E', $v);
        }
        if (\is_string($v)) {
            $n = \strlen($v);
            if (\preg_match('//u', $v) === 1) {
                return match (true) {
                    $n < 32 => \chr(0xa0 | $n),
                    $n <= 0xFF => "\xd9" . \chr($n),
                    $n <= 0xFFFF => "\xda" . \pack('n', $n),
                    default => "\xdb" . \pack('N', $n),
                } . $v;
            }
            return match (true) {
                $n <= 0xFF => "\xc4" . \chr($n),
                $n <= 0xFFFF => "\xc5" . \pack('n', $n),
                default => "\xc6" . \pack('N', $n),
            } . $v;
        }
        if ($v instanceof \stdClass) {
            $v = (array)$v;
            if ($v === []) {
                return "\x80";
            }
        }
        if (\is_array($v)) {
            $n = \count($v);
            $out = '';
            if (\array_is_list($v)) {
                $out = match (true) {
                    $n < 16 => \chr(0x90 | $n),
                    $n <= 0xFFFF => "\xdc" . \pack('n', $n),
                    default => "\xdd" . \pack('N', $n),
                };
                foreach ($v as $item) {
                    $out .= self::pack($item);
                }
                return $out;
            }
            $out = match (true) {
                $n < 16 => \chr(0x80 | $n),
                $n <= 0xFFFF => "\xde" . \pack('n', $n),
                default => "\xdf" . \pack('N', $n),
            };
            foreach ($v as $key => $item) {
                $out .= self::pack($key) . self::pack($item);
            }
            return $out;
        }
        throw new RPCException(\sprintf('msgpack: cannot encode %s', \get_debug_type($v)));
    }

    public static function unpack(string $data, int &$offset): mixed
    {
        $b = \ord(self::take($data, $offset, 1));
        if ($b < 0x80) {
            return $b;
        }
        if ($b >= 0xe0) {
            return $b - 0x100;
        }
        if (($b & 0xf0) === 0x80) {
            return self::map($data, $offset, $b & 0x0f);
        }
        if (($b & 0xf0) === 0x90) {
            return self::list($data, $offset, $b & 0x0f);
        }
        if (($b & 0xe0) === 0xa0) {
            return self::take($data, $offset, $b & 0x1f);
        }
        return match ($b) {
            0xc0 => null,
            0xc2 => false,
            0xc3 => true,
            0xc4, 0xd9 => self::take($data, $offset, self::uint($data, $offset, 1)),
            0xc5, 0xda => self::take($data, $offset, self::uint($data, $offset, 2)),
            0xc6, 0xdb => self::take($data, $offset, self::uint($data, $offset, 4)),
            0xca => \unpack('G', self::take($data, $offset, 4))[1],
            0xcb => \unpack('E', self::take($data, $offset, 8))[1],
            0xcc => self::uint($data, $offset, 1),
            0xcd => self::uint($data, $offset, 2),
            0xce => self::uint($data, $offset, 4),
            0xcf, 0xd3 => \unpack('J', self::take($data, $offset, 8))[1],
            0xd0 => \unpack('c', self::take($data, $offset, 1))[1],
            0xd1 => (($n = self::uint($data, $offset, 2)) >= 0x8000) ? $n - 0x10000 : $n,
            0xd2 => (($n = self::uint($data, $offset, 4)) >= 0x80000000) ? $n - 0x100000000 : $n,
            0xdc => self::list($data, $offset, self::uint($data, $offset, 2)),
            0xdd => self::list($data, $offset, self::uint($data, $offset, 4)),
            0xde => self::map($data, $offset, self::uint($data, $offset, 2)),
            0xdf => self::map($data, $offset, self::uint($data, $offset, 4)),
            default => throw new RPCException(\sprintf('msgpack: unsupported type byte 0x%02x', $b)),
        };
    }

    private static function take(string $data, int &$offset, int $n): string
    {
        if ($offset + $n > \strlen($data)) {
            throw new RPCException('msgpack: truncated value');
        }
        $out = (string)\substr($data, $offset, $n);
        $offset += $n;
        return $out;
    }

    private static function uint(string $data, int &$offset, int $size): int
    {
        $raw = self::take($data, $offset, $size);
        return \unpack([1 => 'C', 2 => 'n', 4 => 'N'][$size], $raw)[1];
    }

    /** @return list<mixed> */
    private static function list(string $data, int &$offset, int $n): array
    {
        $out = [];
        for ($i = 0; $i < $n; $i++) {
            $out[] = self::unpack($data, $offset);
        }
        return $out;
    }

    /** @return array<array-key, mixed> */
    private static function map(string $data, int &$offset, int $n): array
    {
        $out = [];
        for ($i = 0; $i < $n; $i++) {
            $key = self::unpack($data, $offset);
            if (!\is_int($key) && !\is_string($key)) {
                $key = \is_scalar($key) ? (string)$key : \json_encode($key);
            }
            $out[$key] = self::unpack($data, $offset);
        }
        return $out;
    }
}
