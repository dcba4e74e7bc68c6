<?php

/*
 * An HTTP worker that runs Fastrr\Metrics calls (over the RPC address in
 * RR_RPC), for tests/metrics:
 *
 *   POST /  body: a JSON list of calls, each [op, name, ...]:
 *           ["add"|"sub"|"set"|"observe", name, value, [label values]]
 *           ["declare", name, {"type", "help", "namespace", "subsystem", "labels", "buckets"}]
 *           ["unregister", name]
 *   answer: a JSON list, one entry per call: "ok", or {"error": class, "message": text}
 *   GET /pid  {"pid": ...}
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Metrics\Collector;
use Fastrr\Metrics\Metrics;
use Fastrr\Worker;

$http = new HttpWorker(Worker::create());
$metrics = new Metrics();

$collector = static function (array $spec): Collector {
    $c = match ($spec['type'] ?? '') {
        'counter' => Collector::counter(),
        'gauge' => Collector::gauge(),
        'summary' => Collector::summary(),
        'histogram' => Collector::histogram(...array_map('floatval', $spec['buckets'] ?? [])),
        default => throw new InvalidArgumentException('unknown type in the test call'),
    };
    foreach (['namespace' => 'withNamespace', 'subsystem' => 'withSubsystem', 'help' => 'withHelp'] as $key => $with) {
        if (isset($spec[$key])) {
            $c = $c->$with((string)$spec[$key]);
        }
    }
    return isset($spec['labels']) ? $c->withLabels(...$spec['labels']) : $c;
};

while ($request = $http->waitRequest()) {
    if (str_ends_with(parse_url($request->uri, PHP_URL_PATH) ?: '/', '/pid')) {
        $http->respond(200, json_encode(['pid' => getmypid()]), ['Content-Type' => ['application/json']]);
        continue;
    }
    $results = [];
    foreach (json_decode($request->body, true, 512, JSON_THROW_ON_ERROR) as $call) {
        [$op, $name] = $call;
        try {
            match ($op) {
                'add', 'sub', 'set', 'observe' => $metrics->$op($name, (float)$call[2], $call[3] ?? []),
                'declare' => $metrics->declare($name, $collector($call[2])),
                'unregister' => $metrics->unregister($name),
            };
            $results[] = 'ok';
        } catch (Throwable $e) {
            $results[] = ['error' => $e::class, 'message' => $e->getMessage()];
        }
    }
    $http->respond(200, json_encode($results), ['Content-Type' => ['application/json']]);
}
