<?php

/*
 * Hot ceiling of the Symfony app (bench/apps/symfony): booted once, GET /api/item/42 served in a
 * loop in this process (common.php says how and what is measured).
 *   worker: the kernel the app's public/index.php returns, resolved by Fastrr\Symfony\Runtime as in
 *           the worker, run by Fastrr\Symfony\Runner — per request RequestFactory, handle(), the
 *           response, terminate(), the services_resetter reset (Kernel::boot()) — over HotRelay
 *   bare:   the same kernel, Request::create() through handle() and terminate(), no fastrr code
 *           (Symfony then resets the services itself, lazily, at the next handle())
 * APP_ENV/APP_DEBUG/APP_VAR_DIR as for the servers (fastrr bench sets them; warmup.php builds
 * the container cache there).
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Symfony\Runner;
use Fastrr\Symfony\Runtime;
use Fastrr\Worker;
use Symfony\Component\HttpFoundation\Request;

$project = (string)(getenv('FASTRR_SYMFONY_PROJECT') ?: __DIR__ . '/../apps/symfony');
$front = $project . '/public/index.php';
$opts = hot_options($argv);
$clock = new HotClock($opts['warmup'], $opts['iterations'], $opts['seconds']);

// What the worker process sees: its script is the front controller.
$_SERVER['SCRIPT_FILENAME'] = $front;
$_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = '/index.php';
$_SERVER['APP_ENV'] ??= getenv('APP_ENV') ?: 'prod';
$_SERVER['APP_DEBUG'] ??= getenv('APP_DEBUG') !== false ? getenv('APP_DEBUG') : '0';

$t0 = hrtime(true);
require $project . '/vendor/autoload.php';
$closure = require $front; // autoload_runtime.php sees the loader loaded and returns: index.php gives the closure
$options = ['project_dir' => $project];
$runtime = new Runtime($options);
[$app, $args] = $runtime->getResolver($closure)->resolve();
$kernel = $app(...$args);

if ($opts['mode'] === 'worker') {
    $relay = new HotRelay(hot_frame($opts, '/api/item/42'), $clock);
    $runner = new Runner($kernel, new HttpWorker(new Worker($relay)), $options);
    $boot = (hrtime(true) - $t0) / 1e9; // the kernel itself boots in run(), before the first request
    $runner->run();
    $answer = $relay->answer();
} else {
    $kernel->boot();
    $boot = (hrtime(true) - $t0) / 1e9;
    $uri = 'http://127.0.0.1:8080' . ($opts['path'] ?? '/api/item/42');
    $answer = hot_kernel($clock, $kernel, Request::class, $uri);
}
hot_report('symfony', $opts, $clock, $answer, $boot);
