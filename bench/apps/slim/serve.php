<?php

/*
 * The per-request part of the Slim worker, shared by worker.php (over the relay the server
 * gives it) and bench/hot/slim.php (over an in-memory relay: the same code without a server).
 *
 * slim_request() turns Nyholm's PSR-7 request into the Slim\Http\Request Slim 3 wants (why
 * this bridge, and what the alternatives cost: worker.php).
 */

declare(strict_types=1);

use Fastrr\Http\PSR7Worker;
use Fastrr\Relay\RelayException;
use Fastrr\Worker;
use Nyholm\Psr7\Factory\Psr17Factory;
use Psr\Http\Message\ServerRequestInterface;
use Slim\App;
use Slim\Http\Headers;
use Slim\Http\Request;
use Slim\Http\Response;
use Slim\Http\Uri;

function slim_request(ServerRequestInterface $psr): Request
{
    $request = new Request(
        $psr->getMethod(),
        Uri::createFromString((string)$psr->getUri()),
        new Headers($psr->getHeaders()),
        $psr->getCookieParams(),
        $psr->getServerParams(),
        $psr->getBody(),
        $psr->getUploadedFiles(),
    );
    $parsed = $psr->getParsedBody();
    if ($parsed !== null) {
        $request = $request->withParsedBody($parsed);
    }
    foreach ($psr->getAttributes() as $name => $value) {
        $request = $request->withAttribute($name, $value);
    }
    return $request;
}

/**
 * Serves requests from $worker until the server stops it or closes the relay.
 */
function bench_slim_serve(App $app, Worker $worker): void
{
    $httpVersion = $app->getContainer()->get('settings')['httpVersion'];
    $factory = new Psr17Factory();
    $psr7 = new PSR7Worker($worker, $factory, $factory, $factory);

    while (true) {
        try {
            $psr = $psr7->waitRequest();
        } catch (RelayException) {
            break;
        } catch (Throwable $e) {
            $psr7->getWorker()->error('cannot decode request: ' . $e->getMessage());
            continue;
        }
        if ($psr === null) {
            break;
        }
        try {
            // A fresh response per request, as Slim's container builds it: route
            // handlers write into the response body stream, so it cannot be shared.
            $response = (new Response(200, new Headers(['Content-Type' => 'text/html; charset=UTF-8'])))
                ->withProtocolVersion($httpVersion);
            $psr7->respond($app->process(slim_request($psr), $response));
        } catch (Throwable $e) {
            $psr7->getWorker()->error((string)$e);
        }
    }
}
