<?php

/*
 * fastrr worker for the Slim 3 app: the app is built once, then serves requests
 * that arrive through Fastrr\Http\PSR7Worker.
 *
 * Slim 3 predates PSR-17 and wants its own PSR-7 classes (Slim\Http\Request has
 * getParsedBody() with media-type parsers, Response has withJson()), so each
 * PSR-7 ServerRequest (Nyholm) is turned into a Slim\Http\Request by
 * slim_request() below. Measured per request, PHP alone (fastrr bench's
 * phpside, 10k requests): this bridge 28 µs; Slim\Http\Request::createFromEnvironment
 * over an HttpWorker request 33 µs; PSR7Worker with php-slim-psr7's factories
 * (Slim\Psr7 requests, without Slim 3's body parsers) 34 µs. A PSR-17
 * factory producing Slim\Http\Request directly does not fit PSR7Worker: Slim's
 * Request adds a Host header from the URI in its constructor and PSR7Worker then
 * adds the client's Host again.
 */

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';
require_once 'Slim/autoload.php';
require __DIR__ . '/app.php';

use Fastrr\Http\PSR7Worker;
use Fastrr\Relay\RelayException;
use Fastrr\Worker;
use Nyholm\Psr7\Factory\Psr17Factory;
use Psr\Http\Message\ServerRequestInterface;
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

$app = bench_slim_app();
$httpVersion = $app->getContainer()->get('settings')['httpVersion'];
$factory = new Psr17Factory();
$psr7 = new PSR7Worker(Worker::create(), $factory, $factory, $factory);

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
