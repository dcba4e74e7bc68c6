<?php

declare(strict_types=1);

namespace Fastrr\Http;

/**
 * Just enough protobuf for RoadRunner's `http.v1` messages, so the worker
 * also speaks to servers that send protobuf contexts (RoadRunner >= 2024.1).
 * No dependency on google/protobuf.
 *
 *   Request  { 1 remote_addr, 2 protocol, 3 method, 4 uri: string;
 *              5 header, 6 cookies: map<string, HeaderValue>; 7 raw_query: string;
 *              8 parsed: bool; 9 uploads: bytes (JSON); 10 attributes: map<string, HeaderValue> }
 *   Response { 1 status: int64; 2 headers: map<string, HeaderValue> }
 *   HeaderValue { repeated bytes value = 1 }
 *
 * A map entry is a nested message { 1 key; 2 value }.
 *
 * @internal
 */
final class ProtoCodec
{
    private function __construct()
    {
    }

    /**
     * Decodes an `http.v1.Request` into the same array shape as the JSON context.
     *
     * @return array{remoteAddr:string,protocol:string,method:string,uri:string,
     *     headers:array<string,list<string>>,cookies:array<string,string>,rawQuery:string,
     *     parsed:bool,uploads:mixed,attributes:array<string,string>}
     * @throws \UnexpectedValueException on malformed input
     */
    public static function decodeRequest(string $buf): array
    {
        $out = [
            'remoteAddr' => '',
            'protocol' => '',
            'method' => '',
            'uri' => '',
            'headers' => [],
            'cookies' => [],
            'rawQuery' => '',
            'parsed' => false,
            'uploads' => null,
            'attributes' => [],
        ];
        $pos = 0;
        $end = \strlen($buf);
        while ($pos < $end) {
            $key = self::varint($buf, $pos);
            $field = $key >> 3;
            $type = $key & 7;
            if ($type === 0) {
                $value = self::varint($buf, $pos);
                if ($field === 8) {
                    $out['parsed'] = $value !== 0;
                }
                continue;
            }
            if ($type !== 2) {
                self::skip($buf, $pos, $type);
                continue;
            }
            $len = self::varint($buf, $pos);
            if ($len > $end - $pos) {
                throw new \UnexpectedValueException('protobuf field runs past the end of the message');
            }
            $bytes = (string)\substr($buf, $pos, $len);
            $pos += $len;
            switch ($field) {
                case 1:
                    $out['remoteAddr'] = $bytes;
                    break;
                case 2:
                    $out['protocol'] = $bytes;
                    break;
                case 3:
                    $out['method'] = $bytes;
                    break;
                case 4:
                    $out['uri'] = $bytes;
                    break;
                case 5:
                    [$name, $values] = self::mapEntry($bytes);
                    $out['headers'][$name] = $values;
                    break;
                case 6:
                    [$name, $values] = self::mapEntry($bytes);
                    $out['cookies'][$name] = \implode(',', $values);
                    break;
                case 7:
                    $out['rawQuery'] = $bytes;
                    break;
                case 9:
                    if ($bytes !== '') {
                        $out['uploads'] = \json_decode($bytes, true);
                    }
                    break;
                case 10:
                    [$name, $values] = self::mapEntry($bytes);
                    $out['attributes'][$name] = $values[0] ?? '';
                    break;
            }
        }
        return $out;
    }

    /**
     * Encodes an `http.v1.Response`.
     *
     * @param array<string, list<string>> $headers values already normalised to lists of strings
     */
    public static function encodeResponse(int $status, array $headers): string
    {
        $out = "\x08" . self::writeVarint($status);
        foreach ($headers as $name => $values) {
            $value = '';
            foreach ($values as $v) {
                $value .= "\x0A" . self::writeVarint(\strlen($v)) . $v;
            }
            $name = (string)$name;
            $entry = "\x0A" . self::writeVarint(\strlen($name)) . $name
                . "\x12" . self::writeVarint(\strlen($value)) . $value;
            $out .= "\x12" . self::writeVarint(\strlen($entry)) . $entry;
        }
        return $out;
    }

    /**
     * One `map<string, HeaderValue>` entry.
     *
     * @return array{0:string,1:list<string>}
     */
    private static function mapEntry(string $buf): array
    {
        $name = '';
        $values = [];
        $pos = 0;
        $end = \strlen($buf);
        while ($pos < $end) {
            $key = self::varint($buf, $pos);
            if (($key & 7) !== 2) {
                self::skip($buf, $pos, $key & 7);
                continue;
            }
            $len = self::varint($buf, $pos);
            if ($len > $end - $pos) {
                throw new \UnexpectedValueException('protobuf map entry runs past its end');
            }
            $bytes = (string)\substr($buf, $pos, $len);
            $pos += $len;
            if ($key >> 3 === 1) {
                $name = $bytes;
            } elseif ($key >> 3 === 2) {
                // HeaderValue { repeated bytes value = 1 }: several entries of field 1.
                $p = 0;
                $e = \strlen($bytes);
                while ($p < $e) {
                    $k = self::varint($bytes, $p);
                    if (($k & 7) !== 2) {
                        self::skip($bytes, $p, $k & 7);
                        continue;
                    }
                    $l = self::varint($bytes, $p);
                    if ($l > $e - $p) {
                        throw new \UnexpectedValueException('protobuf header value runs past its end');
                    }
                    if ($k >> 3 === 1) {
                        $values[] = (string)\substr($bytes, $p, $l);
                    }
                    $p += $l;
                }
            }
        }
        return [$name, $values];
    }

    private static function varint(string $buf, int &$pos): int
    {
        $result = 0;
        $shift = 0;
        $end = \strlen($buf);
        do {
            if ($pos >= $end || $shift > 63) {
                throw new \UnexpectedValueException('truncated or oversized protobuf varint');
            }
            $byte = \ord($buf[$pos++]);
            $result |= ($byte & 0x7F) << $shift;
            $shift += 7;
        } while ($byte & 0x80);
        return $result;
    }

    private static function writeVarint(int $value): string
    {
        if ($value >= 0 && $value < 0x80) {
            return \chr($value);
        }
        $out = '';
        // Negative int64 values are 10-byte two's complement varints; the
        // unsigned shift keeps the loop finite.
        do {
            $byte = $value & 0x7F;
            $value = ($value >> 7) & 0x01FFFFFFFFFFFFFF;
            $out .= \chr($value !== 0 ? $byte | 0x80 : $byte);
        } while ($value !== 0);
        return $out;
    }

    private static function skip(string $buf, int &$pos, int $type): void
    {
        switch ($type) {
            case 0:
                self::varint($buf, $pos);
                return;
            case 1:
                $pos += 8;
                break;
            case 2:
                $pos += self::varint($buf, $pos);
                break;
            case 5:
                $pos += 4;
                break;
            default:
                throw new \UnexpectedValueException(\sprintf('unsupported protobuf wire type %d', $type));
        }
        if ($pos > \strlen($buf)) {
            throw new \UnexpectedValueException('protobuf field runs past the end of the message');
        }
    }
}
