<?php

declare(strict_types=1);

namespace Fastrr\Broadcast\Topic;

final class Group extends Topic
{
    /** @return non-empty-list<string> */
    public function getNames(): array
    {
        return $this->topics;
    }
}
