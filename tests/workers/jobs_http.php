<?php

/*
 * An HTTP worker that pushes jobs from its request handler (Fastrr\Jobs over
 * the RPC address in RR_RPC), for the server tests:
 *
 *   GET /push?pipeline=P&n=N&name=ack   pushes N jobs (payload "http-<i>"), answers {"ids": [...]}
 *   a push error                         answers 500 {"error": "<the RPC error text>"}
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Jobs\Jobs;
use Fastrr\RPC\RPC;
use Fastrr\Worker;

$http = new HttpWorker(Worker::create());
$jobs = new Jobs(RPC::fromEnvironment());

while ($request = $http->waitRequest()) {
    $query = $request->query;
    try {
        $queue = $jobs->connect((string)($query['pipeline'] ?? 'default'));
        $ids = [];
        for ($i = 1; $i <= (int)($query['n'] ?? 1); $i++) {
            $ids[] = $queue->push((string)($query['name'] ?? 'ack'), "http-$i")->getId();
        }
        $http->respond(200, json_encode(['ids' => $ids]), ['Content-Type' => ['application/json']]);
    } catch (\Throwable $e) {
        $http->respond(500, json_encode(['error' => $e->getMessage()]), ['Content-Type' => ['application/json']]);
    }
}
