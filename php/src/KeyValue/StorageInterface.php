<?php

declare(strict_types=1);

namespace Fastrr\KeyValue;

/*
 * PSR-16 is implemented when the application has psr/simple-cache 2 or 3
 * loaded (typed signatures, as roadrunner-kv 4 requires). Version 1 (Debian's
 * php-psr-simple-cache) declares untyped parameters that a typed class cannot
 * implement, so the cache then stands on its own with the same methods.
 */
if (\interface_exists(\Psr\SimpleCache\CacheInterface::class)
    && (new \ReflectionMethod(\Psr\SimpleCache\CacheInterface::class, 'get'))->getParameters()[0]->hasType()) {
    interface CacheBaseInterface extends \Psr\SimpleCache\CacheInterface
    {
    }
} else {
    interface CacheBaseInterface
    {
    }
}

/** One named storage of the server's `kv` section, as a PSR-16 cache with TTL read-back. */
interface StorageInterface extends CacheBaseInterface
{
    public function getName(): string;

    public function get(string $key, mixed $default = null): mixed;

    public function set(string $key, mixed $value, null|int|\DateInterval $ttl = null): bool;

    public function delete(string $key): bool;

    public function clear(): bool;

    /** @param iterable<string> $keys */
    public function getMultiple(iterable $keys, mixed $default = null): iterable;

    /** @param iterable<string, mixed> $values */
    public function setMultiple(iterable $values, null|int|\DateInterval $ttl = null): bool;

    /** @param iterable<string> $keys */
    public function deleteMultiple(iterable $keys): bool;

    public function has(string $key): bool;

    /** When the key expires; null when it has no TTL or does not exist. */
    public function getTtl(string $key): ?\DateTimeInterface;

    /**
     * @param iterable<string> $keys
     * @return iterable<string, \DateTimeInterface|null>
     */
    public function getMultipleTtl(iterable $keys = []): iterable;

    public function withSerializer(Serializer\SerializerInterface $serializer): self;

    public function getSerializer(): Serializer\SerializerInterface;
}
