<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

use Fastrr\Jobs\Task\ProvidesHeadersInterface;
use Fastrr\Jobs\Task\WritableHeadersInterface;
use Fastrr\Jobs\Task\WritableHeadersTrait;

/**
 * Push options: delay (seconds), priority (lower first, 0 = the pipeline's)
 * and auto-ack, plus headers that every task created with them carries.
 * The with*() methods return modified copies.
 */
class Options implements OptionsInterface, WritableHeadersInterface, \JsonSerializable
{
    use WritableHeadersTrait;

    public function __construct(
        public int $delay = self::DEFAULT_DELAY,
        public int $priority = self::DEFAULT_PRIORITY,
        public bool $autoAck = self::DEFAULT_AUTO_ACK,
    ) {
        self::assertNotNegative('delay', $delay);
        self::assertNotNegative('priority', $priority);
    }

    public static function from(OptionsInterface $options): self
    {
        return new self($options->getDelay(), $options->getPriority(), $options->getAutoAck());
    }

    public function getDelay(): int
    {
        return $this->delay;
    }

    public function getPriority(): int
    {
        return $this->priority;
    }

    public function getAutoAck(): bool
    {
        return $this->autoAck;
    }

    public function withDelay(int $delay): static
    {
        self::assertNotNegative('delay', $delay);
        $self = clone $this;
        $self->delay = $delay;
        return $self;
    }

    public function withPriority(int $priority): static
    {
        self::assertNotNegative('priority', $priority);
        $self = clone $this;
        $self->priority = $priority;
        return $self;
    }

    public function withAutoAck(bool $autoAck): static
    {
        $self = clone $this;
        $self->autoAck = $autoAck;
        return $self;
    }

    public function mergeOptional(?OptionsInterface $options): OptionsInterface
    {
        return $options === null ? $this : $this->merge($options);
    }

    /**
     * These options with every value of $options that is not the default
     * (and its headers, when it has any).
     */
    public function merge(OptionsInterface $options): OptionsInterface
    {
        $self = clone $this;
        if ($options->getDelay() !== self::DEFAULT_DELAY) {
            $self->delay = $options->getDelay();
        }
        if ($options->getPriority() !== self::DEFAULT_PRIORITY) {
            $self->priority = $options->getPriority();
        }
        if ($options->getAutoAck() !== self::DEFAULT_AUTO_ACK) {
            $self->autoAck = $options->getAutoAck();
        }
        if ($options instanceof ProvidesHeadersInterface && $options->getHeaders() !== []) {
            $self->headers = $options->getHeaders();
        }
        return $self;
    }

    /** @return array{priority:int, delay:int, auto_ack:bool} */
    public function toArray(): array
    {
        return ['priority' => $this->getPriority(), 'delay' => $this->getDelay(), 'auto_ack' => $this->getAutoAck()];
    }

    /** @return array{priority:int, delay:int, auto_ack:bool} */
    public function jsonSerialize(): array
    {
        return $this->toArray();
    }

    private static function assertNotNegative(string $what, int $value): void
    {
        if ($value < 0) {
            throw new \InvalidArgumentException(\sprintf('%s must be >= 0, got %d', $what, $value));
        }
    }
}
