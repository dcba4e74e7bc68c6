<?php

/*
 * fastrr bench, kv: one PHP process reading one small key in a loop, the way an
 * application reads a cached value, and reporting what it measured:
 *
 *   php client.php <mode> <address> <key> <seconds> [storage]
 *
 * mode php-redis: Debian's php-redis extension, `Redis::get()` straight to Redis
 *                 at <address> (host:port), one persistent connection;
 * mode fastrr:    `Fastrr\KeyValue\Cache::get()` (one kv.MGet over RPC, protobuf)
 *                 on <storage> of the fastrr at <address> (tcp://host:port), one
 *                 persistent RPC connection, values stored raw.
 *
 * It first makes 2,000 untimed calls, then calls for <seconds> and prints one JSON
 * line: calls, seconds, this process's CPU seconds (getrusage) and round-trip
 * percentiles in µs. A wrong answer (not the value the harness stored) exits 1.
 */

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';

use Fastrr\KeyValue\Factory;
use Fastrr\KeyValue\Serializer\RawSerializer;
use Fastrr\RPC\RPC;

[, $mode, $address, $key, $seconds] = $argv + [null, null, null, null, null];
$storage = $argv[5] ?? 'mem';
$expected = getenv('KV_BENCH_VALUE') ?: 'v';

if ($mode === 'php-redis') {
    if (!extension_loaded('redis')) {
        fwrite(STDERR, "php-redis is not loaded: apt-get install php-redis\n");
        exit(2);
    }
    [$host, $port] = explode(':', $address);
    $redis = new Redis();
    $redis->connect($host, (int)$port);
    $get = static fn () => $redis->get($key);
} elseif ($mode === 'fastrr') {
    $cache = (new Factory(RPC::create($address), new RawSerializer()))->select($storage);
    $get = static fn () => $cache->get($key);
} else {
    fwrite(STDERR, "usage: php client.php php-redis|fastrr <address> <key> <seconds> [storage]\n");
    exit(2);
}

for ($i = 0; $i < 2000; $i++) {
    if ($get() !== $expected) {
        fwrite(STDERR, "wrong value for $key: " . var_export($get(), true) . "\n");
        exit(1);
    }
}

$samples = [];
$ru0 = getrusage();
$t0 = hrtime(true);
$end = $t0 + (int)((float)$seconds * 1e9);
$now = $t0;
while ($now < $end) {
    $get();
    $after = hrtime(true);
    $samples[] = $after - $now;
    $now = $after;
}
$ru1 = getrusage();
$calls = count($samples);
sort($samples);
$cpu = static fn (array $r) => $r['ru_utime.tv_sec'] + $r['ru_utime.tv_usec'] / 1e6 + $r['ru_stime.tv_sec'] + $r['ru_stime.tv_usec'] / 1e6;
$pct = static fn (float $p) => $samples[min($calls - 1, (int)floor($p * $calls))] / 1e3;
echo json_encode([
    'calls' => $calls,
    'seconds' => ($now - $t0) / 1e9,
    'cpu_s' => $cpu($ru1) - $cpu($ru0),
    'p50_us' => $pct(0.50),
    'p99_us' => $pct(0.99),
    'max_us' => $samples[$calls - 1] / 1e3,
]), "\n";
