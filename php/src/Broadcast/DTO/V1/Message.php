<?php

declare(strict_types=1);

namespace Fastrr\Broadcast\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message as ProtoMessage;

/** `broadcast.v1.Message { string command = 1; repeated string topics = 2; bytes payload = 3; }`. */
final class Message extends ProtoMessage
{
    protected const FIELDS = [
        1 => ['command', 'string', ''],
        2 => ['topics', 'string', 'repeated'],
        3 => ['payload', 'bytes', ''],
    ];

    public string $command = '';
    /** @var list<string> */
    public array $topics = [];
    public string $payload = '';

    public function getCommand(): string
    {
        return $this->command;
    }

    /** @return list<string> */
    public function getTopics(): array
    {
        return $this->topics;
    }

    public function getPayload(): string
    {
        return $this->payload;
    }
}
