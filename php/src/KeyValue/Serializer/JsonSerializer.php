<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Serializer;

/** JSON values: readable by non-PHP clients of the same storage (arrays come back as arrays). */
final class JsonSerializer implements SerializerInterface
{
    public function serialize(mixed $value): string
    {
        return \json_encode($value, \JSON_THROW_ON_ERROR | \JSON_UNESCAPED_SLASHES | \JSON_UNESCAPED_UNICODE);
    }

    public function unserialize(string $value): mixed
    {
        return \json_decode($value, true, 512, \JSON_THROW_ON_ERROR);
    }
}
