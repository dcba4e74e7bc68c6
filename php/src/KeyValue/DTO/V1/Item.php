<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message;

/** `kv.v1.Item { string key = 1; bytes value = 2; string timeout = 3; }` (timeout: RFC 3339, '' = none). */
final class Item extends Message
{
    protected const FIELDS = [1 => ['key', 'string', ''], 2 => ['value', 'bytes', ''], 3 => ['timeout', 'string', '']];

    public string $key = '';
    public string $value = '';
    public string $timeout = '';

    public function getKey(): string
    {
        return $this->key;
    }

    public function getValue(): string
    {
        return $this->value;
    }

    public function getTimeout(): string
    {
        return $this->timeout;
    }
}
