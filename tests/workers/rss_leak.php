<?php

/*
 * A worker whose memory grows on demand, for leak-trend recycling
 * (tests/integration/test_leak_recycle.py). BOOT_MS (default 0) delays the
 * boot, so a warm replacement takes that long.
 *
 * Routes (JSON {"pid", "count", "rss_kb"}, rss_kb from /proc/self/statm):
 *   /leak?kb=N        keeps N more KiB alive (written, so resident), like a cache that never evicts
 *   /spike?mb=N       keeps N MiB alive once: memory steps up and then stays flat
 *   /spike-free?mb=N  allocates and writes N MiB, then frees them before answering
 *   anything else     nothing
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Worker;

usleep(max(0, (int)(getenv('BOOT_MS') ?: 0)) * 1000);

$http = new HttpWorker(Worker::create());
$kept = [];
$count = 0;

$rssKb = static function (): int {
    $statm = (string)@file_get_contents('/proc/self/statm');
    return intdiv((int)(explode(' ', $statm)[1] ?? 0) * 4096, 1024);
};

while ($request = $http->waitRequest()) {
    $count++;
    $query = $request->query;
    $path = (string)parse_url($request->uri, PHP_URL_PATH);
    if ($path === '/leak') {
        $kept[] = str_repeat('l', max(0, (int)($query['kb'] ?? 100)) * 1024);
    } elseif ($path === '/spike') {
        $kept[] = str_repeat('s', max(0, (int)($query['mb'] ?? 20)) * 1024 * 1024);
    } elseif ($path === '/spike-free') {
        $block = str_repeat('f', max(0, (int)($query['mb'] ?? 20)) * 1024 * 1024);
        unset($block);
    }
    $http->respond(200, (string)json_encode(['pid' => getmypid(), 'count' => $count, 'rss_kb' => $rssKb()]),
                   ['Content-Type' => ['application/json']]);
}
