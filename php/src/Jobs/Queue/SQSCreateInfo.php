<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * An Amazon SQS pipeline (`driver: sqs`), as roadrunner-php/jobs' class of the
 * same name. `waitTimeSeconds` goes out as the Declare key `wait_time` (the YAML
 * key is `wait_time_seconds`); `attributes` and `tags` as JSON strings, and only
 * when not empty, as `message_group_id` (FIFO queues, names ending in ".fifo").
 */
final class SQSCreateInfo extends CreateInfo
{
    public const PREFETCH_DEFAULT_VALUE = 10;
    public const VISIBILITY_TIMEOUT_DEFAULT_VALUE = 0;
    public const WAIT_TIME_SECONDS_DEFAULT_VALUE = 0;
    public const ATTRIBUTES_DEFAULT_VALUE = [];
    public const TAGS_DEFAULT_VALUE = [];
    public const QUEUE_DEFAULT_VALUE = 'default';
    public const MESSAGE_GROUP_ID_DEFAULT_VALUE = null;
    public const SKIP_QUEUE_DECLARATION_DEFAULT_VALUE = false;

    /**
     * @param array<string, mixed> $attributes queue attributes (CreateQueue), e.g. ['VisibilityTimeout' => 30]
     * @param array<string, string> $tags
     */
    public function __construct(
        string $name,
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        public readonly int $prefetch = self::PREFETCH_DEFAULT_VALUE,
        public readonly int $visibilityTimeout = self::VISIBILITY_TIMEOUT_DEFAULT_VALUE,
        public readonly int $waitTimeSeconds = self::WAIT_TIME_SECONDS_DEFAULT_VALUE,
        public readonly string $queue = self::QUEUE_DEFAULT_VALUE,
        public readonly array $attributes = self::ATTRIBUTES_DEFAULT_VALUE,
        public readonly array $tags = self::TAGS_DEFAULT_VALUE,
        public readonly ?string $messageGroupId = self::MESSAGE_GROUP_ID_DEFAULT_VALUE,
        public readonly bool $skipQueueDeclaration = self::SKIP_QUEUE_DECLARATION_DEFAULT_VALUE,
    ) {
        parent::__construct(Driver::SQS, $name, $priority);
        if ($prefetch < 1) {
            throw new \InvalidArgumentException(\sprintf('prefetch must be >= 1, got %d', $prefetch));
        }
        if ($visibilityTimeout < 0) {
            throw new \InvalidArgumentException(\sprintf('visibilityTimeout must be >= 0, got %d', $visibilityTimeout));
        }
        if ($waitTimeSeconds < 0) {
            throw new \InvalidArgumentException(\sprintf('waitTimeSeconds must be >= 0, got %d', $waitTimeSeconds));
        }
        if ($queue === '') {
            throw new \InvalidArgumentException('queue must not be empty');
        }
        if ($messageGroupId === '') {
            throw new \InvalidArgumentException('messageGroupId must be null or not empty');
        }
    }

    public function toArray(): array
    {
        $result = parent::toArray() + [
            'prefetch' => $this->prefetch,
            'visibility_timeout' => $this->visibilityTimeout,
            'wait_time' => $this->waitTimeSeconds,
            'queue' => $this->queue,
            'skip_queue_declaration' => $this->skipQueueDeclaration,
        ];
        if ($this->attributes !== []) {
            $result['attributes'] = $this->attributes;
        }
        if ($this->tags !== []) {
            $result['tags'] = $this->tags;
        }
        if ($this->messageGroupId !== null) {
            $result['message_group_id'] = $this->messageGroupId;
        }
        return $result;
    }
}
