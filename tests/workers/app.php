<?php

/*
 * The test suite's main worker: one app, routed by path.
 *
 *   APP_MODE=psr7  PSR7Worker + Nyholm's Psr17Factory
 *   otherwise      HttpWorker (plain arrays)
 *
 * Routes (JSON unless noted):
 *   /hello                 {"hello":"world"}
 *   /pid                   {"pid":..,"count":<requests served by this worker, this one included>}
 *   /echo                  the request as the worker saw it
 *   /crash                 exit(1) without answering
 *   /error                 $worker->error("boom: something failed"); the worker carries on
 *   /stop-once?marker=P    first time (no file P): create P and $worker->stop(), then leave the loop;
 *                          afterwards {"pid":..,"stopped_before":true}. Optional: log=L appends
 *                          "<pid>\n" to file L on every execution; ms=N sleeps N ms before the stop
 *   /sleep?ms=N            {"slept":N,"pid":..}
 *   /burn?ms=N             keeps the CPU busy for N ms of this process's CPU time, {"burned":N,"pid":..}
 *   /stream?n=N&ms=M       N chunks "chunk i\n", M ms apart (text/plain, streamed)
 *   /stream-crash?n=N      N chunks "chunk i\n" streamed, then exit(1) in the middle of the stream
 *   /early-hints           103 with a Link header, then {"ok":true}
 *   /stdout                echoes a stray line (must end up on stderr), then {"ok":true}
 *   /answer-then-exit      {"pid":..}, then the worker exits (code 0)
 *   /php-header            calls PHP's header('X-Php-Header: 1') (no effect in a worker), then {"pid":..}
 *   /headers               repeated and lower-case response headers, two Set-Cookie
 *   /status?code=N         empty body with status N
 *   /big?kb=N              N KiB of 'x' (text/plain)
 *   /memory?mb=N           keeps N more MB alive in this worker, reports memory use
 *   /sendfile?path=P       X-Sendfile: P (the server sends the file), body "from php"
 *   anything else          404 {"error":"not found"}
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Http\PSR7Worker;
use Fastrr\Http\Request;
use Fastrr\Relay\RelayException;
use Fastrr\Worker;
use Nyholm\Psr7\Factory\Psr17Factory;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\UploadedFileInterface;

const JSON_FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE;

$worker = Worker::create();
$psr7 = getenv('APP_MODE') === 'psr7';
$factory = null;
$psrWorker = null;
if ($psr7) {
    $factory = new Psr17Factory();
    $psrWorker = new PSR7Worker($worker, $factory, $factory, $factory);
    $http = $psrWorker->getHttpWorker();
} else {
    $http = new HttpWorker($worker);
}

/** Memory kept alive by /memory. */
$hog = [];
$served = 0;

/**
 * Sends one response in the current mode. Generator bodies always go through
 * HttpWorker (PSR-7 has no streaming body type).
 *
 * @param array<string, list<string>> $headers
 */
$send = static function (int $status, string|Generator $body = '', array $headers = [], bool $eos = true) use ($psr7, $factory, $psrWorker, $http): void {
    if (!$psr7 || $body instanceof Generator) {
        $http->respond($status, $body, $headers, $eos);
        return;
    }
    $response = $factory->createResponse($status);
    foreach ($headers as $name => $values) {
        $response = $response->withAddedHeader($name, $values);
    }
    if ($body !== '') {
        $response = $response->withBody($factory->createStream($body));
    }
    $psrWorker->respond($response);
};

$json = static function (int $status, mixed $data, array $headers = []) use ($send): void {
    $send($status, json_encode($data, JSON_FLAGS), ['Content-Type' => ['application/json']] + $headers);
};

/**
 * Upload tree → {name, mime, size, error, sha256} leaves, the same in both modes.
 */
$describeUploads = static function (array $tree) use (&$describeUploads): array {
    $out = [];
    foreach ($tree as $key => $node) {
        if ($node instanceof UploadedFileInterface) {
            $ok = $node->getError() === UPLOAD_ERR_OK;
            $out[$key] = [
                'name' => $node->getClientFilename(),
                'mime' => $node->getClientMediaType(),
                'size' => $node->getSize(),
                'error' => $node->getError(),
                'sha256' => $ok ? hash('sha256', (string)$node->getStream()) : null,
            ];
        } elseif (is_array($node) && array_key_exists('tmpName', $node) && !is_array($node['tmpName'])) {
            $ok = (int)($node['error'] ?? 0) === UPLOAD_ERR_OK && is_file((string)$node['tmpName']);
            $out[$key] = [
                'name' => $node['name'] ?? null,
                'mime' => $node['mime'] ?? null,
                'size' => $node['size'] ?? null,
                'error' => $node['error'] ?? null,
                'sha256' => $ok ? hash_file('sha256', (string)$node['tmpName']) : null,
            ];
        } elseif (is_array($node)) {
            $out[$key] = $describeUploads($node);
        }
    }
    return $out;
};

$echo = static function (Request|ServerRequestInterface $r) use ($describeUploads): array {
    if ($r instanceof Request) {
        $out = [
            'method' => $r->method,
            'uri' => $r->uri,
            'protocol' => $r->protocol,
            'remoteAddr' => $r->remoteAddr,
            'headers' => (object)$r->headers,
            'query' => (object)$r->query,
            'cookies' => (object)$r->cookies,
            'body' => $r->body,
            'parsed' => $r->parsed,
            'parsedBody' => $r->getParsedBody(),
            'attributes' => (object)$r->attributes,
            'uploads' => (object)$describeUploads($r->uploads),
            'files' => (object)$r->getFiles(),
        ];
    } else {
        $body = (string)$r->getBody();
        $out = [
            'method' => $r->getMethod(),
            'uri' => (string)$r->getUri(),
            'protocol' => 'HTTP/' . $r->getProtocolVersion(),
            'remoteAddr' => $r->getServerParams()['REMOTE_ADDR'] ?? null,
            'headers' => (object)$r->getHeaders(),
            'query' => (object)$r->getQueryParams(),
            'cookies' => (object)$r->getCookieParams(),
            'body' => $body,
            'parsed' => $r->getParsedBody() !== null,
            'parsedBody' => $r->getParsedBody(),
            'attributes' => (object)$r->getAttributes(),
            'uploads' => (object)$describeUploads($r->getUploadedFiles()),
        ];
    }
    $out['bodyLength'] = strlen($out['body']);
    $out['bodySha256'] = hash('sha256', $out['body']);
    $out['pid'] = getmypid();
    return $out;
};

while (true) {
    try {
        $request = $psr7 ? $psrWorker->waitRequest() : $http->waitRequest();
    } catch (RelayException $e) {
        // The server closed the relay: nothing left to serve.
        fwrite(STDERR, 'app: relay closed: ' . $e->getMessage() . "\n");
        break;
    } catch (Throwable $e) {
        $worker->error('app: cannot decode request: ' . $e->getMessage());
        continue;
    }
    if ($request === null) {
        break;
    }
    $served++;

    if ($request instanceof Request) {
        $path = parse_url($request->uri, PHP_URL_PATH);
        $query = $request->query;
    } else {
        $path = $request->getUri()->getPath();
        $query = $request->getQueryParams();
    }
    if (!is_string($path) || $path === '') {
        $path = '/';
    }

    try {
        switch ($path) {
            case '/hello':
                $json(200, ['hello' => 'world']);
                break;

            case '/pid':
                $json(200, ['pid' => getmypid(), 'count' => $served]);
                break;

            case '/echo':
                $json(200, $echo($request));
                break;

            case '/crash':
                exit(1);

            case '/answer-then-exit':
                $json(200, ['pid' => getmypid()]);
                exit(0);

            case '/error':
                $worker->error('boom: something failed');
                break;

            case '/stop-once':
                $marker = (string)($query['marker'] ?? '');
                if ($marker === '') {
                    $json(400, ['error' => 'marker query parameter required']);
                    break;
                }
                $log = (string)($query['log'] ?? '');
                if ($log !== '') {
                    file_put_contents($log, getmypid() . "\n", FILE_APPEND | LOCK_EX);
                }
                if (!file_exists($marker)) {
                    touch($marker);
                    usleep(max(0, (int)($query['ms'] ?? 0)) * 1000);
                    $worker->stop();
                    break 2;
                }
                $json(200, ['pid' => getmypid(), 'stopped_before' => true]);
                break;

            case '/burn':
                $ms = max(0, (int)($query['ms'] ?? 0));
                $until = getrusage()['ru_utime.tv_sec'] * 1000 + intdiv(getrusage()['ru_utime.tv_usec'], 1000) + $ms;
                do {
                    $x = 0;
                    for ($i = 0; $i < 10000; $i++) {
                        $x += $i;
                    }
                    $usage = getrusage();
                } while ($usage['ru_utime.tv_sec'] * 1000 + intdiv($usage['ru_utime.tv_usec'], 1000) < $until);
                $json(200, ['burned' => $ms, 'pid' => getmypid()]);
                break;

            case '/sleep':
                $ms = max(0, (int)($query['ms'] ?? 0));
                usleep($ms * 1000);
                $json(200, ['slept' => $ms, 'pid' => getmypid()]);
                break;

            case '/stream':
                $n = max(0, (int)($query['n'] ?? 3));
                $ms = max(0, (int)($query['ms'] ?? 0));
                $chunks = (static function () use ($n, $ms): Generator {
                    for ($i = 0; $i < $n; $i++) {
                        if ($i > 0 && $ms > 0) {
                            usleep($ms * 1000);
                        }
                        yield "chunk $i\n";
                    }
                })();
                $send(200, $chunks, ['Content-Type' => ['text/plain']]);
                break;

            case '/stream-crash':
                $n = max(1, (int)($query['n'] ?? 2));
                $chunks = (static function () use ($n): Generator {
                    for ($i = 0; $i < $n; $i++) {
                        yield "chunk $i\n";
                    }
                    usleep(100_000);
                    exit(1);
                })();
                $send(200, $chunks, ['Content-Type' => ['text/plain']]);
                break;

            case '/early-hints':
                $send(103, '', ['Link' => ['</style.css>; rel=preload; as=style']], false);
                $json(200, ['ok' => true]);
                break;

            case '/stdout':
                echo "stray output from app\n";
                $json(200, ['ok' => true]);
                break;

            case '/php-header':
                header('X-Php-Header: 1');
                $json(200, ['pid' => getmypid()]);
                break;

            case '/headers':
                $json(200, ['ok' => true], [
                    'X-Multi' => ['a', 'b'],
                    'x-lower-case' => ['yes'],
                    'Set-Cookie' => ['first=1; Path=/', 'second=2; Path=/; HttpOnly'],
                ]);
                break;

            case '/status':
                $send((int)($query['code'] ?? 200));
                break;

            case '/big':
                $kb = max(0, (int)($query['kb'] ?? 1));
                $send(200, str_repeat('x', $kb * 1024), ['Content-Type' => ['text/plain']]);
                break;

            case '/memory':
                $mb = max(0, (int)($query['mb'] ?? 1));
                if ($mb > 0) {
                    $hog[] = str_repeat('m', $mb * 1024 * 1024);
                }
                $held = 0;
                foreach ($hog as $block) {
                    $held += strlen($block);
                }
                $json(200, [
                    'pid' => getmypid(),
                    'held_mb' => intdiv($held, 1024 * 1024),
                    'memory' => memory_get_usage(),
                    'memory_real' => memory_get_usage(true),
                ]);
                break;

            case '/sendfile':
                $send(200, 'from php', [
                    'X-Sendfile' => [(string)($query['path'] ?? '')],
                    'X-From-App' => ['yes'],
                ]);
                break;

            default:
                $json(404, ['error' => 'not found']);
        }
    } catch (Throwable $e) {
        $worker->error((string)$e);
    }
}
