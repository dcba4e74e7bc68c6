<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\Kafka;

/** {"type": OffsetType, "value"?: int} */
class ConsumerOffset implements \JsonSerializable
{
    public function __construct(
        public readonly OffsetType $type,
        public readonly ?int $value = null,
    ) {
    }

    public function jsonSerialize(): array
    {
        $data = ['type' => $this->type->value];
        if ($this->value !== null) {
            $data['value'] = $this->value;
        }
        return $data;
    }
}
