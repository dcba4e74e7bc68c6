<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

use Fastrr\Jobs\Options;
use Fastrr\Jobs\OptionsAwareInterface;
use Fastrr\Jobs\OptionsInterface;

/**
 * A task built by Queue::create(), not sent yet: Queue::dispatch() sends it.
 * Immutable: the with*() methods return copies.
 */
final class PreparedTask extends Task implements PreparedTaskInterface, OptionsAwareInterface
{
    use WritableHeadersTrait;

    private OptionsInterface $options;

    /**
     * @param array<string, list<string>> $headers
     */
    public function __construct(
        string $name,
        string|\Stringable $payload,
        ?OptionsInterface $options = null,
        array $headers = [],
    ) {
        $this->options = $options ?? new Options();
        parent::__construct($name, $payload, $headers);
    }

    public function __clone()
    {
        $this->options = clone $this->options;
    }

    public function getOptions(): OptionsInterface
    {
        return $this->options;
    }

    public function withOptions(OptionsInterface $options): static
    {
        $self = clone $this;
        $self->options = $options;
        return $self;
    }

    public function getDelay(): int
    {
        return $this->options->getDelay();
    }

    public function withDelay(int $seconds): static
    {
        return $this->withOption('withDelay', $seconds);
    }

    public function getPriority(): int
    {
        return $this->options->getPriority();
    }

    public function withPriority(int $priority): static
    {
        return $this->withOption('withPriority', $priority);
    }

    public function getAutoAck(): bool
    {
        return $this->options->getAutoAck();
    }

    public function withAutoAck(bool $autoAck): static
    {
        return $this->withOption('withAutoAck', $autoAck);
    }

    private function withOption(string $method, int|bool $value): static
    {
        $options = $this->options;
        if (!\method_exists($options, $method)) {
            $options = Options::from($options);
        }
        $self = clone $this;
        $self->options = $options->{$method}($value);
        return $self;
    }
}
