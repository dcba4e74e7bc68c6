<?php

declare(strict_types=1);

namespace Fastrr\Broadcast\Topic;

use Fastrr\Broadcast\BroadcastInterface;
use Fastrr\Broadcast\Exception\InvalidArgumentException;
use Fastrr\Broadcast\TopicInterface;

abstract class Topic implements TopicInterface
{
    /** @var non-empty-list<string> */
    protected array $topics;

    /**
     * @param iterable<string> $topics
     * @throws InvalidArgumentException
     */
    public function __construct(private readonly BroadcastInterface $broadcast, iterable $topics)
    {
        $names = [];
        foreach ($topics as $topic) {
            $names[] = $topic;
        }
        if ($names === []) {
            throw new InvalidArgumentException('Unable to create instance for 0 topic names');
        }
        $this->topics = $names;
    }

    public function publish($messages): void
    {
        $this->broadcast->publish($this->topics, $messages);
    }
}
