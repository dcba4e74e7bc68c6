<?php

/*
 * fastrr demo application: one long-lived worker process that boots once and
 * then serves many requests.
 *
 *   GET  /          HTML page about this worker (PID, requests served, boot cost)
 *   GET  /hello     {"message":"Hello, World!"}: the benchmark endpoint
 *   GET  /api/info  JSON: pid, requests served, uptime, PHP version, memory
 *   POST /api/echo  JSON body and parsed form echoed back
 *
 * Run it with `fastrr serve` (or RoadRunner's `rr serve`) from this directory;
 * see .rr.yaml.
 */

declare(strict_types=1);

// In the CLI, REQUEST_TIME_FLOAT is when the process started: boot includes PHP's own start-up.
$processStart = $_SERVER['REQUEST_TIME_FLOAT'] ?? microtime(true);

require __DIR__ . '/../autoload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Http\Request;
use Fastrr\Relay\RelayException;
use Fastrr\Worker;

const JSON_OUT = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE;

// Everything below runs once per process, not once per request: this is where a
// framework would build its container, routes and configuration.
$http = new HttpWorker(Worker::create());
$bootedAt = microtime(true);
$bootMs = ($bootedAt - $processStart) * 1000;
$served = 0;

$jsonHeaders = ['Content-Type' => ['application/json']];
$htmlHeaders = ['Content-Type' => ['text/html; charset=utf-8']];
$helloBody = '{"message":"Hello, World!"}';

$page = static function (float $startedAt) use (&$served, $bootedAt, $bootMs): string {
    $e = static fn (string $s): string => htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
    $pid = getmypid();
    $uptime = microtime(true) - $bootedAt;
    $handledMs = (microtime(true) - $startedAt) * 1000;
    $bootTime = date('Y-m-d H:i:s', (int)$bootedAt);
    $rows = [
        'Worker PID' => (string)$pid,
        'Requests served by this worker' => (string)$served,
        'Booted at' => $bootTime,
        'Boot duration (once per process)' => sprintf('%.2f ms', $bootMs),
        'This request, handling time' => sprintf('%.3f ms', $handledMs),
        'Uptime' => sprintf('%.1f s', $uptime),
        'PHP' => PHP_VERSION . ' (' . PHP_SAPI . ')',
        'Memory' => sprintf('%.1f MiB (peak %.1f MiB)', memory_get_usage() / 1048576, memory_get_peak_usage() / 1048576),
    ];
    $table = '';
    foreach ($rows as $label => $value) {
        $table .= '<tr><th>' . $e($label) . '</th><td>' . $e($value) . "</td></tr>\n";
    }
    $ratio = $handledMs > 0 ? $bootMs / $handledMs : 0.0;
    return <<<HTML
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fastrr demo: worker {$pid}</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; }
th { width: 55%; font-weight: 500; color: #555; }
code { background: #f3f3f3; padding: 0 .25rem; }
</style>
</head>
<body>
<h1>Hello from a long-lived PHP worker</h1>
<p>This page was rendered by PHP process <strong>{$pid}</strong>, which booted once at {$e($bootTime)}
and has served <strong>{$served}</strong> request(s) since. Reload the page: the PID stays the same
(per worker) and the counter goes up, because nothing is re-booted between requests.</p>
<table>
{$table}</table>
<p>Booting took {$e(sprintf('%.2f', $bootMs))} ms; handling this request took
{$e(sprintf('%.3f', $handledMs))} ms. A per-request model (php-fpm) would pay the boot cost
on every request, about {$e(sprintf('%.0f', $ratio))}&times; this request's own work.</p>
<p>JSON endpoints: <a href="/hello"><code>GET /hello</code></a> &middot;
<a href="/api/info"><code>GET /api/info</code></a> &middot;
<code>POST /api/echo</code> (send JSON or a form).</p>
</body>
</html>
HTML;
};

while (true) {
    try {
        $request = $http->waitRequest();
    } catch (RelayException) {
        break; // the server went away
    } catch (Throwable $e) {
        $http->getWorker()->error('cannot decode request: ' . $e->getMessage());
        continue;
    }
    if ($request === null) {
        break; // the server asked this worker to stop
    }
    $served++;
    $startedAt = microtime(true);

    try {
        $path = parse_url($request->uri, PHP_URL_PATH) ?: '/';

        // The benchmark route comes first and does nothing else.
        if ($path === '/hello') {
            $http->respond(200, $helloBody, $jsonHeaders);
            continue;
        }

        switch ($request->method . ' ' . $path) {
            case 'GET /':
            case 'HEAD /':
                $http->respond(200, $page($startedAt), $htmlHeaders);
                break;

            case 'GET /api/info':
                $http->respond(200, json_encode([
                    'pid' => getmypid(),
                    'requests_served' => $served,
                    'booted_at' => date(DATE_ATOM, (int)$bootedAt),
                    'boot_ms' => round($bootMs, 3),
                    'uptime_s' => round(microtime(true) - $bootedAt, 3),
                    'php_version' => PHP_VERSION,
                    'memory' => memory_get_usage(),
                    'memory_peak' => memory_get_peak_usage(),
                ], JSON_OUT), $jsonHeaders);
                break;

            case 'POST /api/echo':
                $http->respond(...echoResponse($request, $jsonHeaders));
                break;

            default:
                $http->respond(404, json_encode(['error' => 'not found', 'path' => $path], JSON_OUT), $jsonHeaders);
        }
    } catch (Throwable $e) {
        $http->getWorker()->error((string)$e);
    }
}

/**
 * POST /api/echo: the JSON body back, plus the parsed form for urlencoded and
 * multipart bodies.
 *
 * @param array<string, list<string>> $headers
 * @return array{0:int,1:string,2:array<string, list<string>>}
 */
function echoResponse(Request $request, array $headers): array
{
    $json = null;
    if (!$request->parsed && $request->body !== '') {
        try {
            $json = json_decode($request->body, true, 512, JSON_THROW_ON_ERROR);
        } catch (JsonException $e) {
            return [400, json_encode(['error' => 'body is not valid JSON: ' . $e->getMessage()], JSON_OUT), $headers];
        }
    }
    return [200, json_encode([
        'json' => $json,
        'form' => $request->getParsedBody(),
        'content_type' => $request->getHeaderLine('Content-Type'),
        'pid' => getmypid(),
    ], JSON_OUT), $headers];
}
