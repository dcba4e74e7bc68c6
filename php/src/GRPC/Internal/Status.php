<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Internal;

use Fastrr\GRPC\Exception\GRPCExceptionInterface;
use Google\Protobuf\Any;

/**
 * google.rpc.Status for a GRPCException, written by hand (code = 1 int32,
 * message = 2 string, details = 3 repeated google.protobuf.Any) so that the
 * library needs no google/common-protos; the bytes are those of the generated
 * class: proto3 rules, fields in number order, defaults left out.
 *
 * @internal
 */
final class Status
{
    public static function encode(GRPCExceptionInterface $e): string
    {
        $out = '';
        $code = (int)$e->getCode();
        if ($code !== 0) {
            $out .= "\x08" . self::varint($code);
        }
        $message = $e->getMessage();
        if ($message !== '') {
            $out .= "\x12" . self::varint(\strlen($message)) . $message;
        }
        foreach ($e->getDetails() as $detail) {
            $any = new Any();
            $any->pack($detail);
            $bytes = $any->serializeToString();
            $out .= "\x1a" . self::varint(\strlen($bytes)) . $bytes;
        }
        return $out;
    }

    /** Base-128 varint; a negative int32 is sign-extended to 10 bytes, as protobuf does. */
    public static function varint(int $n): string
    {
        $out = '';
        for ($i = 0; $i < 10; $i++) {
            $low = $n & 0x7f;
            $n = ($n >> 7) & \PHP_INT_MAX >> 6; // logical shift: negative numbers end after 10 bytes
            if ($n === 0) {
                return $out . \chr($low);
            }
            $out .= \chr($low | 0x80);
        }
        return $out;
    }
}
