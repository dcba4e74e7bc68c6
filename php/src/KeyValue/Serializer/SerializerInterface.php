<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Serializer;

/** How values become the opaque bytes the server stores (roadrunner-kv's SerializerInterface). */
interface SerializerInterface
{
    public function serialize(mixed $value): string;

    public function unserialize(string $value): mixed;
}
