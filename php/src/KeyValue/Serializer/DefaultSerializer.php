<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Serializer;

use Fastrr\KeyValue\Exception\KeyValueException;

/** PHP's serialize()/unserialize(), as roadrunner-kv's default: values written by either library read in both. */
final class DefaultSerializer implements SerializerInterface
{
    public function serialize(mixed $value): string
    {
        return \serialize($value);
    }

    public function unserialize(string $value): mixed
    {
        if ($value === \serialize(false)) {
            return false;
        }
        $result = @\unserialize($value);
        if ($result === false) {
            throw new KeyValueException('cannot unserialize the stored value: ' . \substr($value, 0, 64));
        }
        return $result;
    }
}
