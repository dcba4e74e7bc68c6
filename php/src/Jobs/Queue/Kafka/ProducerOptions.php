<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\Kafka;

/** producer_options; the timeouts go out as whole seconds ("30s"), as spiral/roadrunner-jobs sends them. */
final class ProducerOptions implements \JsonSerializable
{
    public const DEFAULT_DISABLE_IDEMPOTENT_DEFAULT_VALUE = false;
    public const DEFAULT_MAX_MESSAGE_BYTES_DEFAULT_VALUE = 1_000_012;

    public function __construct(
        public readonly bool $disableIdempotent = self::DEFAULT_DISABLE_IDEMPOTENT_DEFAULT_VALUE,
        public readonly ?Acks $requiredAcks = Acks::AllISRAck,
        public readonly int $maxMessageBytes = self::DEFAULT_MAX_MESSAGE_BYTES_DEFAULT_VALUE,
        public readonly ?\DateInterval $requestTimeout = null,
        public readonly ?\DateInterval $deliveryTimeout = null,
        public readonly ?\DateInterval $transactionTimeout = null,
        public readonly ?CompressionCodec $compressionCodec = null,
    ) {
    }

    public function jsonSerialize(): array
    {
        $data = ['disable_idempotent' => $this->disableIdempotent, 'max_message_bytes' => $this->maxMessageBytes];
        foreach (['request_timeout' => $this->requestTimeout, 'delivery_timeout' => $this->deliveryTimeout,
                     'transaction_timeout' => $this->transactionTimeout] as $key => $interval) {
            if ($interval !== null) {
                $data[$key] = self::seconds($interval) . 's';
            }
        }
        if ($this->requiredAcks !== null) {
            $data['required_acks'] = $this->requiredAcks->value;
        }
        if ($this->compressionCodec !== null) {
            $data['compression_codec'] = $this->compressionCodec->value;
        }
        return $data;
    }

    private static function seconds(\DateInterval $interval): int
    {
        return (($interval->d * 24 + $interval->h) * 60 + $interval->i) * 60 + $interval->s;
    }
}
