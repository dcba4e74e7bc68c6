<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * A protobuf (proto3) message of RoadRunner's `jobs.v1` package, encoded and
 * decoded by hand: no ext-protobuf or google/protobuf needed.
 *
 * Each message class lists its fields in FIELDS:
 *
 *   number => [proto name, type, label]
 *
 * type is a scalar (string, bytes, int64, int32, uint64, bool) or a message
 * class; label is '' (singular), 'repeated' or 'map' (map<string, type>).
 * The PHP property is the camelCase proto name (auto_ack → $autoAck).
 *
 * Encoding follows the official rules, byte for byte what Go's, upb's (PHP
 * ext, Python) and google/protobuf's PHP runtime write:
 * - fields in field-number order; proto3 singular scalars equal to their
 *   default (0, '', false) are left out, a set sub-message is always written
 *   (an empty one as tag + 00);
 * - repeated strings are one field each, map entries are nested messages
 *   {1: key, 2: value} with both key and value always written, in the
 *   array's order;
 * - negative int64/int32 are 10-byte varints (two's complement).
 *
 * Decoding skips unknown fields, merges a repeated sub-message field into the
 * existing one as protobuf does, and keeps the last value of a repeated
 * singular scalar. uint64 values past PHP_INT_MAX come out negative.
 *
 * The method names are those of Google's generated classes
 * (`serializeToString()`, `mergeFromString()`, `getX()`), so code written for
 * `RoadRunner\Jobs\DTO\V1\*` reads these the same way.
 */
abstract class Message
{
    /** @var array<int, array{0:string,1:string,2:string}> */
    protected const FIELDS = [];

    private const SCALARS = ['string' => 2, 'bytes' => 2, 'int64' => 0, 'int32' => 0, 'uint64' => 0, 'bool' => 0];

    /**
     * @param array<string, mixed> $data values by proto name (snake_case) or property name;
     *     a message-typed value may be given as an array of its own fields
     */
    public function __construct(array $data = [])
    {
        $fields = [];
        foreach (static::FIELDS as [$name, $type, $label]) {
            $fields[$name] = $fields[self::property($name)] = [$name, $type, $label];
        }
        foreach ($data as $key => $value) {
            if (!isset($fields[$key])) {
                throw new \InvalidArgumentException(\sprintf('%s has no field "%s"', static::class, $key));
            }
            [$name, $type, $label] = $fields[$key];
            $prop = self::property($name);
            $this->{$prop} = self::normalise($type, $label, $value);
        }
    }

    public function serializeToString(): string
    {
        $out = '';
        foreach (static::FIELDS as $number => [$name, $type, $label]) {
            $value = $this->{self::property($name)};
            if ($label === 'repeated') {
                foreach ($value as $item) {
                    $out .= self::field($number, $type, $item);
                }
            } elseif ($label === 'map') {
                foreach ($value as $key => $item) {
                    $entry = self::field(1, 'string', (string)$key) . self::field(2, $type, $item);
                    $out .= self::tag($number, 2) . self::varint(\strlen($entry)) . $entry;
                }
            } elseif ($value !== null && $value !== '' && $value !== 0 && $value !== false) {
                $out .= self::field($number, $type, $value);
            }
        }
        return $out;
    }

    /**
     * Merges the encoded message into this one (protobuf merge semantics).
     *
     * @throws \UnexpectedValueException on malformed input
     */
    public function mergeFromString(string $data): void
    {
        $pos = 0;
        $end = \strlen($data);
        while ($pos < $end) {
            $key = self::readVarint($data, $pos);
            $number = $key >> 3;
            $wire = $key & 7;
            $spec = static::FIELDS[$number] ?? null;
            $type = $spec[1] ?? '';
            $expected = $spec === null ? -1 : ($spec[2] === 'map' ? 2 : (self::SCALARS[$type] ?? 2));
            if ($wire !== $expected) {
                // An unknown field, or one with a wire type we do not expect there: skip it.
                self::skip($data, $pos, $wire);
                continue;
            }
            [$name, , $label] = $spec;
            $prop = self::property($name);
            $value = self::readValue($data, $pos, $label === 'map' ? 'bytes' : $type);
            if ($label === 'repeated') {
                $this->{$prop}[] = $value;
            } elseif ($label === 'map') {
                [$k, $v] = self::readEntry($value, $type);
                $this->{$prop}[$k] = $v;
            } elseif ($value instanceof self && $this->{$prop} instanceof self) {
                $this->{$prop}->mergeFromString($value->serializeToString());
            } else {
                $this->{$prop} = $value;
            }
        }
    }

    /**
     * Decodes a whole message.
     *
     * @throws \UnexpectedValueException on malformed input
     */
    public static function decode(string $data): static
    {
        /** @psalm-suppress UnsafeInstantiation */
        $message = new static();
        $message->mergeFromString($data);
        return $message;
    }

    // ------------------------------------------------------------------ wire

    public static function varint(int $v): string
    {
        $out = '';
        if ($v < 0) {
            // Two's complement as an unsigned 64-bit number: shift logically.
            $out .= \chr(($v & 0x7F) | 0x80);
            $v = ($v >> 7) & (\PHP_INT_MAX >> 6);
        }
        while ($v > 0x7F) {
            $out .= \chr(($v & 0x7F) | 0x80);
            $v >>= 7;
        }
        return $out . \chr($v);
    }

    public static function tag(int $number, int $wire): string
    {
        return self::varint(($number << 3) | $wire);
    }

    /**
     * @throws \UnexpectedValueException
     */
    public static function readVarint(string $data, int &$pos): int
    {
        $result = 0;
        $end = \strlen($data);
        for ($shift = 0; $shift < 64; $shift += 7) {
            if ($pos >= $end) {
                throw new \UnexpectedValueException('protobuf: truncated varint');
            }
            $b = \ord($data[$pos++]);
            $result |= ($b & 0x7F) << $shift;
            if ($b < 0x80) {
                return $result;
            }
        }
        throw new \UnexpectedValueException('protobuf: varint longer than 10 bytes');
    }

    private static function field(int $number, string $type, mixed $value): string
    {
        switch ($type) {
            case 'string':
            case 'bytes':
                $value = (string)$value;
                return self::tag($number, 2) . self::varint(\strlen($value)) . $value;
            case 'int64':
            case 'int32':
            case 'uint64':
                return self::tag($number, 0) . self::varint((int)$value);
            case 'bool':
                return self::tag($number, 0) . ($value ? "\x01" : "\x00");
        }
        if (!$value instanceof Message) {
            throw new \InvalidArgumentException(\sprintf('protobuf: expected a %s, got %s', $type, \get_debug_type($value)));
        }
        $bytes = $value->serializeToString();
        return self::tag($number, 2) . self::varint(\strlen($bytes)) . $bytes;
    }

    private static function readValue(string $data, int &$pos, string $type): mixed
    {
        if ((self::SCALARS[$type] ?? 2) === 0) {
            $v = self::readVarint($data, $pos);
            return match ($type) {
                'bool' => $v !== 0,
                'int32' => (($v & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000,
                default => $v,
            };
        }
        $len = self::readVarint($data, $pos);
        if ($len < 0 || $len > \strlen($data) - $pos) {
            throw new \UnexpectedValueException('protobuf: field runs past the end of the message');
        }
        $bytes = (string)\substr($data, $pos, $len);
        $pos += $len;
        if (isset(self::SCALARS[$type])) {
            return $bytes;
        }
        return $type::decode($bytes);
    }

    /**
     * @return array{0:string,1:mixed} a map entry {1: key, 2: value}; a missing part is its default
     */
    private static function readEntry(string $entry, string $type): array
    {
        $key = '';
        $value = null;
        $pos = 0;
        $end = \strlen($entry);
        $valueWire = self::SCALARS[$type] ?? 2;
        while ($pos < $end) {
            $tag = self::readVarint($entry, $pos);
            if ($tag === 0x0A) {
                $key = self::readValue($entry, $pos, 'string');
            } elseif ($tag === (0x10 | $valueWire)) {
                $value = self::readValue($entry, $pos, $type);
            } else {
                self::skip($entry, $pos, $tag & 7);
            }
        }
        return [$key, $value ?? self::defaultOf($type)];
    }

    private static function skip(string $data, int &$pos, int $wire): void
    {
        $n = match ($wire) {
            0 => self::readVarint($data, $pos) * 0, // the varint itself is the value
            1 => 8,
            2 => self::readVarint($data, $pos),
            5 => 4,
            default => throw new \UnexpectedValueException(\sprintf('protobuf: unsupported wire type %d', $wire)),
        };
        if ($n < 0 || $n > \strlen($data) - $pos) {
            throw new \UnexpectedValueException('protobuf: field runs past the end of the message');
        }
        $pos += $n;
    }

    private static function defaultOf(string $type): mixed
    {
        return match ($type) {
            'string', 'bytes' => '',
            'int64', 'int32', 'uint64' => 0,
            'bool' => false,
            default => new $type(),
        };
    }

    private static function normalise(string $type, string $label, mixed $value): mixed
    {
        if ($label === 'repeated' || $label === 'map') {
            if (!\is_iterable($value)) {
                throw new \InvalidArgumentException(\sprintf('protobuf: a %s field takes a list, got %s', $label, \get_debug_type($value)));
            }
            $out = [];
            foreach ($value as $k => $item) {
                $item = self::normalise($type, '', $item);
                if ($label === 'map') {
                    $out[(string)$k] = $item;
                } else {
                    $out[] = $item;
                }
            }
            return $out;
        }
        return match ($type) {
            'string', 'bytes' => (string)$value,
            'int64', 'int32', 'uint64' => (int)$value,
            'bool' => (bool)$value,
            default => \is_array($value) ? new $type($value) : $value,
        };
    }

    private static function property(string $name): string
    {
        return \lcfirst(\str_replace('_', '', \ucwords($name, '_')));
    }
}
