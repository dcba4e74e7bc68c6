<?php

declare(strict_types=1);

namespace Fastrr\Lock;

use Fastrr\Lock\DTO\V1\Request;
use Fastrr\Lock\DTO\V1\Response;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\Exception\RPCException;
use Fastrr\RPC\RPC;
use Fastrr\RPC\RPCInterface;

/**
 * Locks over RPC, the calls and units roadrunner-php/lock sends:
 *
 *   $lock = new Lock(RPC::create('tcp://127.0.0.1:6001'));   // or new Lock(): RR_RPC
 *   if ($id = $lock->lock('report:42', ttl: 30, waitTTL: 5)) {
 *       try { ... } finally { $lock->release('report:42', $id); }
 *   }
 *
 * Locks live in one fastrr instance (as RoadRunner's do): workers of the same
 * server exclude each other, workers of another instance do not.
 *
 * A DateInterval counts whole: PT1M is 60 s (roadrunner-php/lock reads only
 * its seconds field, so there PT1M is 0).
 */
final class Lock implements LockInterface
{
    /** `exists()` without an id asks whether anyone holds the resource. */
    public const ANY = '*';

    private readonly RPCInterface $rpc;

    public function __construct(
        ?RPCInterface $rpc = null,
        private readonly LockIdGeneratorInterface $ids = new UuidLockIdGenerator(),
    ) {
        $this->rpc = ($rpc ?? RPC::fromEnvironment())->withCodec(new ProtobufCodec());
    }

    public function lock(
        string $resource,
        ?string $id = null,
        int|float|\DateInterval $ttl = 0,
        int|float|\DateInterval $waitTTL = 0,
    ): false|string {
        return $this->take('lock.Lock', $resource, $id, $ttl, $waitTTL);
    }

    public function lockRead(
        string $resource,
        ?string $id = null,
        int|float|\DateInterval $ttl = 0,
        int|float|\DateInterval $waitTTL = 0,
    ): false|string {
        return $this->take('lock.LockRead', $resource, $id, $ttl, $waitTTL);
    }

    public function release(string $resource, string $id): bool
    {
        return $this->call('lock.Release', $resource, $id);
    }

    public function forceRelease(string $resource): bool
    {
        return $this->call('lock.ForceRelease', $resource, self::ANY);
    }

    public function exists(string $resource, ?string $id = null): bool
    {
        return $this->call('lock.Exists', $resource, $id ?? self::ANY);
    }

    public function updateTTL(string $resource, string $id, int|float|\DateInterval $ttl): bool
    {
        return $this->call('lock.UpdateTTL', $resource, $id, $ttl);
    }

    /** lock() and lockRead(): the id the lock is held under, or false. */
    private function take(
        string $method,
        string $resource,
        ?string $id,
        int|float|\DateInterval $ttl,
        int|float|\DateInterval $wait,
    ): false|string {
        $id ??= $this->ids->generate();
        return $this->call($method, $resource, $id, $ttl, $wait) ? $id : false;
    }

    private function call(
        string $method,
        string $resource,
        string $id,
        int|float|\DateInterval $ttl = 0,
        int|float|\DateInterval $wait = 0,
    ): bool {
        $request = new Request([
            'resource' => $resource,
            'id' => $id,
            'ttl' => self::micros($ttl, 'ttl'),
            'wait' => self::micros($wait, 'wait'),
        ]);
        try {
            $response = $this->rpc->call($method, $request, Response::class);
        } catch (RPCException $e) {
            throw new LockException($e->getMessage(), 0, $e);
        }
        \assert($response instanceof Response);
        return $response->ok;
    }

    /** Seconds (or an interval) to the microseconds the server counts in. */
    private static function micros(int|float|\DateInterval $value, string $what): int
    {
        if ($value instanceof \DateInterval) {
            $start = new \DateTimeImmutable('@0');
            $end = $start->add($value);
            $seconds = (float)$end->format('U.u') - (float)$start->format('U.u');
        } else {
            $seconds = (float)$value;
        }
        if ($seconds < 0 || \is_nan($seconds)) {
            throw new \InvalidArgumentException(\sprintf('lock %s must not be negative, got %s s', $what, $seconds));
        }
        return (int)\round($seconds * 1_000_000);
    }
}
