<?php

declare(strict_types=1);

namespace Fastrr\Broadcast\Topic;

use Fastrr\Broadcast\BroadcastInterface;

final class SingleTopic extends Topic
{
    public function __construct(BroadcastInterface $broadcast, string $topic)
    {
        parent::__construct($broadcast, [$topic]);
    }

    public function getName(): string
    {
        return $this->topics[0];
    }
}
