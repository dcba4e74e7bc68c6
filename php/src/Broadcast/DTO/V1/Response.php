<?php

declare(strict_types=1);

namespace Fastrr\Broadcast\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message as ProtoMessage;

/** `broadcast.v1.Response { bool ok = 1; }`. */
final class Response extends ProtoMessage
{
    protected const FIELDS = [1 => ['ok', 'bool', '']];

    public bool $ok = false;

    public function getOk(): bool
    {
        return $this->ok;
    }
}
