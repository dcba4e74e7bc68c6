<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message;

/** `kv.v1.Request { string storage = 1; repeated Item items = 2; }`: the argument of every kv.* call. */
final class Request extends Message
{
    protected const FIELDS = [1 => ['storage', 'string', ''], 2 => ['items', Item::class, 'repeated']];

    public string $storage = '';
    /** @var list<Item> */
    public array $items = [];
}
