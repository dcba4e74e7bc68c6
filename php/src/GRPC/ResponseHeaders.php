<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

/**
 * Metadata a method sends back before its reply: take it from the context,
 * `$ctx->getValue(ResponseHeaders::class)->set('x-id', '42')`. Values are
 * UTF-8 strings (they travel as JSON, as with RoadRunner); a key ending in
 * "-bin" is sent as those bytes.
 *
 * @implements \IteratorAggregate<string, string>
 */
class ResponseHeaders implements \IteratorAggregate, \Countable
{
    /** @var array<string, string> */
    protected array $values = [];

    /** @param iterable<string, string> $values */
    public function __construct(iterable $values = [])
    {
        foreach ($values as $key => $value) {
            $this->set((string)$key, $value);
        }
    }

    public function set(string $key, string $value): void
    {
        $this->values[$key] = $value;
    }

    public function get(string $key, ?string $default = null): ?string
    {
        return $this->values[$key] ?? $default;
    }

    public function getIterator(): \Traversable
    {
        return new \ArrayIterator($this->values);
    }

    public function count(): int
    {
        return \count($this->values);
    }

    /** The JSON object the server reads ("{}" when empty, never PHP's "[]"). */
    public function packHeaders(): string
    {
        return self::pack($this->values);
    }

    /** @param array<string, string> $values */
    protected static function pack(array $values): string
    {
        return $values === [] ? '{}' : \json_encode($values, \JSON_THROW_ON_ERROR | \JSON_UNESCAPED_SLASHES);
    }
}
