<?php

declare(strict_types=1);

namespace Fastrr\Lock;

/**
 * Locks held by the fastrr instance (`lock.*` RPC). Durations are seconds
 * (int or float) or a DateInterval; 0 means no expiry for a ttl and "try once"
 * for a wait.
 */
interface LockInterface
{
    /** An exclusive lock; returns the id it is held under, or false when not granted within $waitTTL. */
    public function lock(
        string $resource,
        ?string $id = null,
        int|float|\DateInterval $ttl = 0,
        int|float|\DateInterval $waitTTL = 0,
    ): false|string;

    /** A shared lock (any number of readers, no writer); returns its id or false. */
    public function lockRead(
        string $resource,
        ?string $id = null,
        int|float|\DateInterval $ttl = 0,
        int|float|\DateInterval $waitTTL = 0,
    ): false|string;

    /** Releases the lock $id holds; false when it holds none. */
    public function release(string $resource, string $id): bool;

    /** Releases every lock on the resource, whoever holds it; false when there was none. */
    public function forceRelease(string $resource): bool;

    /** Whether $id holds a lock on the resource; with no id, whether anyone does. */
    public function exists(string $resource, ?string $id = null): bool;

    /** Restarts the expiry of the lock $id holds with a new ttl; false when it holds none. */
    public function updateTTL(string $resource, string $id, int|float|\DateInterval $ttl): bool;
}
