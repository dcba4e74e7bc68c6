<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

/**
 * Values are stored as strings (an int header goes out as "2", which the
 * server's map<string, []string> accepts).
 */
trait WritableHeadersTrait
{
    use HeadersTrait;

    public function withHeader(string $name, string|iterable $value): static
    {
        if ($name === '') {
            throw new \InvalidArgumentException('a header name must not be empty');
        }
        $self = clone $this;
        $self->headers[$name] = [];
        foreach (\is_iterable($value) ? $value : [$value] as $item) {
            $self->headers[$name][] = (string)$item;
        }
        return $self;
    }

    public function withAddedHeader(string $name, string|iterable $value): static
    {
        $values = $this->headers[$name] ?? [];
        foreach (\is_iterable($value) ? $value : [$value] as $item) {
            $values[] = $item;
        }
        return $this->withHeader($name, $values);
    }

    public function withoutHeader(string $name): static
    {
        if (!isset($this->headers[$name])) {
            return $this;
        }
        $self = clone $this;
        unset($self->headers[$name]);
        return $self;
    }
}
