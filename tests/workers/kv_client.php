<?php

/*
 * One Fastrr\KeyValue call against a real server, for tests/kv/test_kv_php.py:
 *
 *   php kv_client.php <rpc address> <storage> <op> [args...]
 *
 * ops: set KEY VALUE [TTL seconds] | get KEY | getmulti KEY... | has KEY |
 * delete KEY | clear | ttl KEY | setbin KEY HEX | getbin KEY (hex or null) |
 * setsize KEY N (N bytes of "x") | setmulti TTL KEY VALUE [KEY VALUE...] |
 * expire KEY TTL | json-set KEY JSON | json-get KEY
 * The answer is JSON on stdout; a failure prints {"error": class, "message": text}
 * and exits 1.
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\KeyValue\Factory;
use Fastrr\KeyValue\Serializer\JsonSerializer;
use Fastrr\KeyValue\Serializer\RawSerializer;
use Fastrr\RPC\RPC;

[, $address, $storage, $op] = $argv + [null, null, null, null];
$args = array_slice($argv, 4);
if ($op === null) {
    fwrite(STDERR, "usage: php kv_client.php <rpc address> <storage> <op> [args...]\n");
    exit(2);
}

$cache = (new Factory(RPC::create($address)))->select($storage);
$raw = $cache->withSerializer(new RawSerializer());

try {
    $answer = match ($op) {
        'set' => $cache->set($args[0], $args[1], isset($args[2]) ? (int)$args[2] : null),
        'get' => $cache->get($args[0]),
        'getmulti' => $cache->getMultiple($args),
        'has' => $cache->has($args[0]),
        'delete' => $cache->delete($args[0]),
        'clear' => $cache->clear(),
        'ttl' => $cache->getTtl($args[0])?->format(DATE_RFC3339),
        'setbin' => $raw->set($args[0], hex2bin($args[1])),
        'getbin' => ($v = $raw->get($args[0])) === null ? null : bin2hex($v),
        'setsize' => $raw->set($args[0], str_repeat('x', (int)$args[1])) && strlen((string)$raw->get($args[0])),
        'setmulti' => $cache->setMultiple(
            array_combine(
                array_values(array_filter(array_slice($args, 1), fn ($i) => $i % 2 === 0, ARRAY_FILTER_USE_KEY)),
                array_values(array_filter(array_slice($args, 1), fn ($i) => $i % 2 === 1, ARRAY_FILTER_USE_KEY)),
            ),
            (int)$args[0],
        ),
        'expire' => $cache->expire([$args[0]], (int)$args[1]),
        'json-set' => $cache->withSerializer(new JsonSerializer())->set($args[0], json_decode($args[1], true)),
        'json-get' => $cache->withSerializer(new JsonSerializer())->get($args[0]),
        default => throw new InvalidArgumentException("unknown op $op"),
    };
    echo json_encode($answer), "\n";
} catch (Throwable $e) {
    echo json_encode(['error' => $e::class, 'message' => $e->getMessage()]), "\n";
    exit(1);
}
