<?php

declare(strict_types=1);

namespace Fastrr\Broadcast;

use Fastrr\Broadcast\Exception\BroadcastException;

interface TopicInterface
{
    /**
     * @param iterable<string>|string $messages
     * @throws BroadcastException
     */
    public function publish($messages): void;
}
