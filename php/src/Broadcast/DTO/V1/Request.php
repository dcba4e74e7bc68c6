<?php

declare(strict_types=1);

namespace Fastrr\Broadcast\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message as ProtoMessage;

/** `broadcast.v1.Request { repeated Message messages = 1; }`: the argument of broadcast.Publish. */
final class Request extends ProtoMessage
{
    protected const FIELDS = [1 => ['messages', Message::class, 'repeated']];

    /** @var list<Message> */
    public array $messages = [];

    /** @return list<Message> */
    public function getMessages(): array
    {
        return $this->messages;
    }
}
