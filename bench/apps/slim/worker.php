<?php

/*
 * fastrr worker for the Slim 3 app: the app is built once, then serves requests
 * that arrive through Fastrr\Http\PSR7Worker.
 *
 * Slim 3 predates PSR-17 and wants its own PSR-7 classes (Slim\Http\Request has
 * getParsedBody() with media-type parsers, Response has withJson()), so each
 * PSR-7 ServerRequest (Nyholm) is turned into a Slim\Http\Request by
 * slim_request() (serve.php). Measured per request, PHP alone (fastrr bench's
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
require __DIR__ . '/serve.php';

bench_slim_serve(bench_slim_app(), Fastrr\Worker::create());
