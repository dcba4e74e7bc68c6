<?php

/*
 * Hot ceiling of the Slim app (bench/apps/slim): booted once, GET /api/users/42 served in a loop
 * in this process (common.php says how and what is measured).
 *   worker: bench_slim_serve() — the worker's loop (PSR7Worker, the Slim bridge) — over HotRelay
 *   bare:   Slim\Http\Request from a mocked environment through $app->process(), no fastrr code
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

$apps = __DIR__ . '/../apps/slim';
require_once 'Slim/autoload.php';
require $apps . '/app.php';
require $apps . '/serve.php';

use Fastrr\Worker;
use Slim\Http\Environment;
use Slim\Http\Headers;
use Slim\Http\Request;
use Slim\Http\Response;

$opts = hot_options($argv);
$clock = new HotClock($opts['warmup'], $opts['iterations'], $opts['seconds']);
$t0 = hrtime(true);
$app = bench_slim_app();
$boot = (hrtime(true) - $t0) / 1e9;

if ($opts['mode'] === 'worker') {
    $relay = new HotRelay(hot_frame($opts, '/api/users/42'), $clock);
    bench_slim_serve($app, new Worker($relay));
    $answer = $relay->answer();
} else {
    $path = $opts['path'] ?? '/api/users/42';
    $httpVersion = $app->getContainer()->get('settings')['httpVersion'];
    // Slim's Uri::createFromEnvironment() passes null to preg_replace_callback() on every request
    // (an E_DEPRECATED on PHP 8.2; the worker's createFromString() path does not): without this,
    // writing that line to stderr would be most of what the bare loop measures.
    error_reporting(E_ALL & ~E_DEPRECATED);
    $answer = hot_bare($clock, static function () use ($app, $path, $httpVersion): array {
        $request = Request::createFromEnvironment(Environment::mock([
            'REQUEST_METHOD' => 'GET', 'REQUEST_URI' => $path, 'HTTP_HOST' => '127.0.0.1:8080',
            'SERVER_PORT' => 8080,
        ]));
        $response = (new Response(200, new Headers(['Content-Type' => 'text/html; charset=UTF-8'])))
            ->withProtocolVersion($httpVersion);
        $response = $app->process($request, $response);
        return [$response->getStatusCode(), (string)$response->getBody()];
    });
}
hot_report('slim', $opts, $clock, $answer, $boot);
