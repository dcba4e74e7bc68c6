<?php

declare(strict_types=1);

namespace Fastrr\Broadcast;

use Fastrr\Broadcast\Exception\BroadcastException;
use Fastrr\Broadcast\Exception\InvalidArgumentException;

/**
 * Publishing to the server's broadcast brokers (the websockets / SSE subscribers), the face
 * of roadrunner-php/broadcast's `Spiral\RoadRunner\Broadcast\BroadcastInterface`.
 */
interface BroadcastInterface
{
    /** @deprecated as in roadrunner-php/broadcast: always throws */
    public function isAvailable(): bool;

    /**
     * Every message to every topic, on every broker of the server:
     *
     *   $broadcast->publish('topic', 'message');
     *   $broadcast->publish(['topic 1', 'topic 2'], ['message 1', 'message 2']);
     *
     * @param iterable<string>|string $topics
     * @param iterable<string>|string $messages
     * @throws BroadcastException
     */
    public function publish($topics, $messages): void;

    /**
     * A local handle on one topic or a group of topics (no RPC is made).
     *
     * @param iterable<string>|string $topics
     * @throws InvalidArgumentException
     */
    public function join($topics): TopicInterface;
}
