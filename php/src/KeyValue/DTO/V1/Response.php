<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message;

/** `kv.v1.Response { repeated Item items = 1; }`. */
final class Response extends Message
{
    protected const FIELDS = [1 => ['items', Item::class, 'repeated']];

    /** @var list<Item> */
    public array $items = [];

    /** @return list<Item> */
    public function getItems(): array
    {
        return $this->items;
    }
}
