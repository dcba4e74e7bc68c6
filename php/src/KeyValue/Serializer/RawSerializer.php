<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Serializer;

use Fastrr\KeyValue\Exception\InvalidArgumentException;

/** Strings stored as they are (binary safe); scalars and Stringable objects as their string; null as ''. */
final class RawSerializer implements SerializerInterface
{
    public function serialize(mixed $value): string
    {
        if ($value === null || \is_scalar($value) || $value instanceof \Stringable) {
            return (string)$value;
        }
        throw new InvalidArgumentException(\sprintf('RawSerializer stores strings, not %s', \get_debug_type($value)));
    }

    public function unserialize(string $value): mixed
    {
        return $value;
    }
}
