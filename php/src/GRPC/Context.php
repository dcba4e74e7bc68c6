<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

/**
 * The context a service method gets. Readable as an array too
 * (`$ctx['user-agent']`), countable and iterable, as RoadRunner's. A class
 * name key of RoadRunner's library (`Spiral\RoadRunner\GRPC\ResponseHeaders`,
 * what `ResponseHeaders::class` is in code written for it) finds the object
 * stored under this library's name.
 *
 * @implements \IteratorAggregate<string, mixed>
 * @implements \ArrayAccess<string, mixed>
 */
final class Context implements ContextInterface, \IteratorAggregate, \Countable, \ArrayAccess
{
    /** @param array<string, mixed> $values */
    public function __construct(private array $values = [])
    {
    }

    public function withValue(string $key, mixed $value): ContextInterface
    {
        $copy = clone $this;
        $copy->values[$key] = $value;
        return $copy;
    }

    public function getValue(string $key, mixed $default = null): mixed
    {
        $key = self::key($key);
        return \array_key_exists($key, $this->values) ? $this->values[$key] : $default;
    }

    public function getValues(): array
    {
        return $this->values;
    }

    public function offsetExists(mixed $offset): bool
    {
        return \array_key_exists(self::key((string)$offset), $this->values);
    }

    public function offsetGet(mixed $offset): mixed
    {
        return $this->values[self::key((string)$offset)] ?? null;
    }

    public function offsetSet(mixed $offset, mixed $value): void
    {
        $this->values[(string)$offset] = $value;
    }

    public function offsetUnset(mixed $offset): void
    {
        unset($this->values[(string)$offset]);
    }

    private static function key(string $key): string
    {
        return \str_starts_with($key, 'Spiral\\RoadRunner\\GRPC\\') ? __NAMESPACE__ . \substr($key, 22) : $key;
    }

    public function getIterator(): \Traversable
    {
        return new \ArrayIterator($this->values);
    }

    public function count(): int
    {
        return \count($this->values);
    }
}
