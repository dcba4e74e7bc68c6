<?php

// fastrr worker for the upload endpoint.

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';
require __DIR__ . '/upload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Relay\RelayException;
use Fastrr\Worker;

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
        [$status, $body] = upload_handle($request->method, $request->body);
        $http->respond($status, $body, $headers);
    } catch (Throwable $e) {
        $http->getWorker()->error((string)$e);
    }
}
