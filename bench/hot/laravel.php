<?php

/*
 * Hot ceiling of the Laravel app (bench/apps/laravel): booted once, GET /api/item/42 served in a
 * loop in this process (common.php says how and what is measured).
 *   worker: Fastrr\Laravel\Worker — what php/bin/fastrr-laravel-worker runs: boot(), then per
 *           request RequestFactory, Sandbox::open, the HTTP kernel, the response, terminate(),
 *           Sandbox::close — over HotRelay
 *   bare:   the same booted application, Illuminate\Http\Request::create() through the HTTP kernel
 *           (handle, getContent, terminate), no sandbox, no fastrr code
 * The app's storage and caches: APP_STORAGE / APP_CACHE_DIR, as for the servers (fastrr bench sets
 * them; build-caches.php builds the config and route caches there).
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Laravel\Worker as LaravelWorker;
use Fastrr\Worker;
use Illuminate\Contracts\Http\Kernel;
use Illuminate\Http\Request;

$base = (string)(getenv('FASTRR_LARAVEL_BASE_PATH') ?: __DIR__ . '/../apps/laravel');
$opts = hot_options($argv);
$clock = new HotClock($opts['warmup'], $opts['iterations'], $opts['seconds']);

$t0 = hrtime(true);
if ($opts['mode'] === 'worker') {
    $relay = new HotRelay(hot_frame($opts, '/api/item/42'), $clock);
    $worker = new LaravelWorker($base, new HttpWorker(new Worker($relay)));
    $boot = (hrtime(true) - $t0) / 1e9;
    $worker->serve();
    $answer = $relay->answer();
} else {
    $app = LaravelWorker::boot($base);
    $kernel = $app->make(Kernel::class);
    $boot = (hrtime(true) - $t0) / 1e9;
    $uri = 'http://127.0.0.1:8080' . ($opts['path'] ?? '/api/item/42');
    $answer = hot_kernel($clock, $kernel, Request::class, $uri);
}
hot_report('laravel', $opts, $clock, $answer, $boot);
