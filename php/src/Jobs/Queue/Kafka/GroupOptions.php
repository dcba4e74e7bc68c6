<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\Kafka;

/** group_options: the consumer group a pipeline's consumers join (offsets are committed per group). */
final class GroupOptions implements \JsonSerializable
{
    public const BLOCK_REBALANCE_ON_POLL_DEFAULT_VALUE = false;

    public function __construct(
        public readonly ?string $groupId = null,
        public readonly bool $blockRebalanceOnPoll = self::BLOCK_REBALANCE_ON_POLL_DEFAULT_VALUE,
    ) {
    }

    public function jsonSerialize(): array
    {
        return ['group_id' => $this->groupId, 'block_rebalance_on_poll' => $this->blockRebalanceOnPoll];
    }
}
