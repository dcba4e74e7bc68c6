<?php

// fastrr worker for the API app: routes compiled once, then one api_handle() per request.

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';
require __DIR__ . '/api.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Relay\RelayException;
use Fastrr\Worker;

$routes = api_routes();
$http = new HttpWorker(Worker::create());
$headers = ['Content-Type' => ['application/json']];

while (true) {
    try {
        $request = $http->waitRequest();
    } catch (RelayException) {
        break;
    } catch (Throwable $e) {
        $http->getWorker()->error('cannot decode request: ' . $e->getMessage());
        continue;
    }
    if ($request === null) {
        break;
    }
    try {
        [$status, $body] = api_handle($routes, $request->method,
                                      (string)parse_url($request->uri, PHP_URL_PATH), $request->body);
        $http->respond($status, $body, $headers);
    } catch (Throwable $e) {
        $http->getWorker()->error((string)$e);
    }
}
