<?php

/*
 * Tests of Fastrr\KeyValue and Fastrr\Lock, loaded by run.php (its harness,
 * and fakeRpc() from jobs.php). Expected bytes were produced by Google's
 * Python protobuf runtime from the server's own kv.v1 / lock.v1beta1
 * messages (fastrr/kv/proto.py, fastrr/lock/proto.py).
 */

declare(strict_types=1);

use Fastrr\KeyValue\Cache;
use Fastrr\KeyValue\DTO\V1\Item;
use Fastrr\KeyValue\DTO\V1\Request as KvRequest;
use Fastrr\KeyValue\DTO\V1\Response as KvResponse;
use Fastrr\KeyValue\Exception\InvalidArgumentException as KvInvalidArgument;
use Fastrr\KeyValue\Exception\KeyValueException;
use Fastrr\KeyValue\Exception\NotImplementedException;
use Fastrr\KeyValue\Exception\StorageException;
use Fastrr\KeyValue\Factory;
use Fastrr\KeyValue\Serializer\JsonSerializer;
use Fastrr\KeyValue\Serializer\RawSerializer;
use Fastrr\Lock\DTO\V1\Request as LockRequest;
use Fastrr\Lock\DTO\V1\Response as LockResponse;
use Fastrr\Lock\Lock;
use Fastrr\Lock\LockException;
use Fastrr\Lock\LockIdGeneratorInterface;
use Fastrr\RPC\Codec\ProtobufCodec;

test('kv proto: Request and Response bytes match the server\'s kv.v1', function (): void {
    $req = new KvRequest(['storage' => 'users', 'items' => [
        new Item(['key' => 'a']),
        new Item(['key' => 'b', 'value' => 's:1:"x";', 'timeout' => '2030-01-01T00:00:00+00:00']),
    ]]);
    hexEq('0a05757365727312030a016112280a01621208733a313a2278223b1a19323033302d30312d30315430303a30303a30302b30303a3030',
        $req->serializeToString());
    $resp = KvResponse::decode(hex2bin('0a190a01611a14323033302d30312d30315430303a30303a30305a0a030a0162'));
    eq(['a', 'b'], array_map(fn (Item $i) => $i->getKey(), $resp->getItems()));
    eq(['2030-01-01T00:00:00Z', ''], array_map(fn (Item $i) => $i->getTimeout(), $resp->getItems()));
});

test('kv cache: get/getMultiple are one kv.MGet; missing keys take the default', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => hex2bin('0a090a01611204693a353b'));   // items: [a => serialize(5)]
    $cache = (new Factory($rpc))->select('users');
    eq(['a' => 5, 'zz' => 'dflt'], $cache->getMultiple(['a', 'zz'], 'dflt'));
    eq(5, $cache->get('a'));
    eq('d', $cache->get('zz', 'd'));
    eq(3, count($calls));
    eq('kv.MGet', $calls[0][0]);
    ok(($calls[0][2] & (new ProtobufCodec())->getIndex()) !== 0, 'sent with the protobuf codec');
    $sent = KvRequest::decode($calls[0][1]);
    eq('users', $sent->storage);
    eq(['a', 'zz'], array_map(fn (Item $i) => $i->key, $sent->items));
    eq([], (new Factory($rpc))->select('users')->getMultiple([]), 'no keys, no call');
    eq(3, count($calls));
});

test('kv cache: set sends serialize() bytes and an RFC 3339 UTC timeout', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => '');
    $cache = new Cache($rpc, 's');
    ok($cache->set('k', ['x' => 1], 60));
    $item = KvRequest::decode($calls[0][1])->items[0];
    eq(serialize(['x' => 1]), $item->value);
    ok((bool)preg_match('/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/', $item->timeout), $item->timeout);
    $delta = (new DateTimeImmutable($item->timeout))->getTimestamp() - time();
    ok($delta >= 59 && $delta <= 61, "timeout is now + 60 s, got +$delta");

    $cache->set('k', 'v');
    eq('', KvRequest::decode($calls[1][1])->items[0]->timeout, 'null ttl: no timeout');
    $cache->set('k', 'v', new DateInterval('PT2H'));
    $delta = (new DateTimeImmutable(KvRequest::decode($calls[2][1])->items[0]->timeout))->getTimestamp() - time();
    ok($delta >= 7199 && $delta <= 7201, "interval ttl: +$delta");

    $cache->setMultiple(['1' => 'one', 'two' => 2], 5);
    $items = KvRequest::decode($calls[3][1])->items;
    eq(['1', 'two'], array_map(fn (Item $i) => $i->key, $items), 'an int array key goes back to a string');
    eq($items[0]->timeout, $items[1]->timeout, 'one timeout for every item');
});

test('kv cache: has, delete, clear, expire and the TTL read-back', function (): void {
    $answers = ['kv.Has' => hex2bin('0a030a0161'), 'kv.TTL' => hex2bin('0a190a01611a14323033302d30312d30315430303a30303a30305a0a030a0162')];
    [$rpc, $calls] = fakeRpc(fn (string $m) => $answers[$m] ?? '');
    $cache = new Cache($rpc, 's');
    ok($cache->has('a'));
    ok(!$cache->has('b'));
    ok($cache->delete('a'));
    ok($cache->deleteMultiple(['a', 'b']));
    ok($cache->clear());
    ok($cache->expire(['a'], 30));
    $ttl = $cache->getMultipleTtl(['a', 'b', 'c']);
    eq('2030-01-01T00:00:00+00:00', $ttl['a']->format(DATE_RFC3339));
    eq(null, $ttl['b'], 'an empty timeout: no TTL');
    eq(null, $ttl['c'], 'a key the server did not list');
    eq('2030-01-01', $cache->getTtl('a')->format('Y-m-d'));
    eq(['kv.Has', 'kv.Has', 'kv.Delete', 'kv.Delete', 'kv.Clear', 'kv.MExpire', 'kv.TTL', 'kv.TTL'],
        array_map(fn ($c) => $c[0], (array)$calls));
    eq(0, count(KvRequest::decode($calls[4][1])->items), 'Clear sends no items');
    eq('', KvRequest::decode($calls[5][1])->items[0]->value, 'MExpire sends no value');
});

test('kv cache: server errors become the exceptions roadrunner-kv raises', function (): void {
    $cases = [
        ['kv.MGet: no such storage: nope (storages: s)', StorageException::class, 'has not been defined'],
        ['kv.TTL: storage m: memcached_plugin_ttl: not valid request for memcached', NotImplementedException::class, '_plugin_ttl'],
        ['kv.Set: storage s: items[0] (key k): value is 9 bytes, over', KeyValueException::class, 'over'],
    ];
    foreach ($cases as [$text, $class, $needle]) {
        [$rpc] = fakeRpc(fn () => ['error' => $text]);
        $e = throws($class, fn () => (new Cache($rpc, 'nope'))->get('k'));
        ok(str_contains($e->getMessage(), $needle), $e->getMessage());
    }
    [$rpc, $calls] = fakeRpc(fn () => '');
    $e = throws(KvInvalidArgument::class, fn () => (new Cache($rpc, 's'))->getMultiple(['ok', 5]));
    eq('Cache key must be a string, but int passed', $e->getMessage());
    throws(KvInvalidArgument::class, fn () => (new Cache($rpc, 's'))->set('', 1));
    eq(0, count($calls), 'nothing was sent for a bad key');
});

test('kv serializers: default round-trips false, JSON and raw bytes', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => '');
    $cache = new Cache($rpc, 's');
    $cache->withSerializer(new JsonSerializer())->set('j', ['a' => [1, 2]]);
    eq('{"a":[1,2]}', KvRequest::decode($calls[0][1])->items[0]->value);
    $cache->withSerializer(new RawSerializer())->set('r', "\x00\xff");
    eq("\x00\xff", KvRequest::decode($calls[1][1])->items[0]->value);
    throws(KvInvalidArgument::class, fn () => $cache->withSerializer(new RawSerializer())->set('r', [1]));
    ok($cache->getSerializer() instanceof \Fastrr\KeyValue\Serializer\DefaultSerializer, 'withSerializer is a copy');
    $d = new \Fastrr\KeyValue\Serializer\DefaultSerializer();
    eq(false, $d->unserialize($d->serialize(false)));
    throws(KeyValueException::class, fn () => $d->unserialize('not serialized'));
});

test('lock proto: Request bytes with µs ttl/wait match lock.v1beta1', function (): void {
    hexEq('0a03706466120269311880ade20420808ece1c',
        (new LockRequest(['resource' => 'pdf', 'id' => 'i1', 'ttl' => 10_000_000, 'wait' => 60_000_000]))->serializeToString());
    eq(true, LockResponse::decode(hex2bin('0801'))->getOk());
    eq(false, LockResponse::decode('')->getOk());
});

test('lock: seconds and intervals go out in microseconds; ids default to UUIDs', function (): void {
    [$rpc, $calls] = fakeRpc(fn (string $m) => $m === 'lock.LockRead' ? '' : hex2bin('0801'));
    $lock = new Lock($rpc);
    $id = $lock->lock('pdf', ttl: 10, waitTTL: new DateInterval('PT1M'));
    ok((bool)preg_match('/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/', $id), $id);
    $sent = LockRequest::decode($calls[0][1]);
    eq(['pdf', $id, 10_000_000, 60_000_000], [$sent->resource, $sent->id, $sent->ttl, $sent->wait]);
    eq(false, $lock->lockRead('pdf', 'r', 0.25), 'not granted: false');
    eq(250_000, LockRequest::decode($calls[1][1])->ttl);
    ok($lock->exists('pdf'));
    eq('*', LockRequest::decode($calls[2][1])->id, 'exists() without an id asks for anyone');
    ok($lock->forceRelease('pdf'));
    ok($lock->updateTTL('pdf', $id, 1.5));
    eq(1_500_000, LockRequest::decode($calls[4][1])->ttl);
    ok($lock->release('pdf', $id));
    eq(['lock.Lock', 'lock.LockRead', 'lock.Exists', 'lock.ForceRelease', 'lock.UpdateTTL', 'lock.Release'],
        array_map(fn ($c) => $c[0], (array)$calls));
    throws(\InvalidArgumentException::class, fn () => $lock->lock('pdf', ttl: -1));
    eq(6, count($calls), 'nothing sent for a negative ttl');

    $fixed = new class implements LockIdGeneratorInterface {
        public function generate(): string
        {
            return 'fixed-id';
        }
    };
    eq('fixed-id', (new Lock($rpc, $fixed))->lock('x'));
    [$rpc] = fakeRpc(fn () => ['error' => 'lock.Lock: empty resource is not allowed']);
    $e = throws(LockException::class, fn () => (new Lock($rpc))->lock(''));
    ok(str_contains($e->getMessage(), 'empty resource'), $e->getMessage());
});

test('kv cache: get() writes the same kv.MGet bytes as the message and reads answers by hand', function (): void {
    $answers = [];
    [$rpc, $calls] = fakeRpc(function () use (&$answers) {
        return array_shift($answers);
    });
    $cache = (new Cache($rpc, 'users'))->withSerializer(new RawSerializer());
    $answers[] = (new KvResponse(['items' => [new Item(['key' => 'other', 'value' => 'no']),
        new Item(['key' => 'k', 'value' => 'yes'])]]))->serializeToString();
    eq('yes', $cache->get('k'));
    hexEq(bin2hex((new KvRequest(['storage' => 'users', 'items' => [new Item(['key' => 'k'])]]))->serializeToString()),
        $calls[0][1]);
    $answers[] = '';
    eq('dflt', $cache->get('k', 'dflt'), 'no items: the default');
    $answers[] = (new KvResponse(['items' => [new Item(['key' => 'k'])]]))->serializeToString();
    eq('', $cache->get('k', 'dflt'), 'an empty value is a value');
    // a field this library does not know (number 9, varint) before the items is skipped
    $answers[] = "\x48\x05" . (new KvResponse(['items' => [new Item(['key' => 'k', 'value' => 'v', 'timeout' => 'x'])]]))->serializeToString();
    eq('v', $cache->get('k'));
    $answers[] = "\x0a\x05\x0a\x01k";   // an item longer than the answer
    throws(KeyValueException::class, fn () => $cache->get('k'), 'malformed');
    $long = str_repeat('é', 100);
    $answers[] = (new KvResponse(['items' => [new Item(['key' => $long, 'value' => str_repeat("\x00", 300)])]]))->serializeToString();
    eq(str_repeat("\x00", 300), $cache->get($long), 'multi-byte lengths');
});
