<?php

declare(strict_types=1);

namespace Fastrr\Logger\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message;

/**
 * `applogger.v1.LogAttrs { string key = 1; string value = 2; }`: one context field.
 */
final class LogAttrs extends Message
{
    protected const FIELDS = [
        1 => ['key', 'string', ''],
        2 => ['value', 'string', ''],
    ];

    public string $key = '';
    public string $value = '';

    public function getKey(): string
    {
        return $this->key;
    }

    public function getValue(): string
    {
        return $this->value;
    }
}
