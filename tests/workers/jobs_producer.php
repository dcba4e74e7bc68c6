<?php

/*
 * Pushes jobs over RPC with Fastrr\Jobs, for the server tests:
 *
 *   php jobs_producer.php <rpc address> <pipeline> <N> [single|batch]
 *
 * e.g. `php jobs_producer.php tcp://127.0.0.1:6001 emails 10 batch`: N jobs
 * named "ack" with payloads "job-1" .. "job-N", one jobs.Push each (single,
 * the default) or all in one jobs.PushBatch (batch). Prints the job ids, one
 * per line, in push order. On failure: the error message on stderr, exit 1
 * (in single mode the ids pushed before the failure are printed); usage
 * errors: exit 2.
 *
 * Optional environment: JOBS_NAME (task name instead of "ack"), JOBS_PAYLOAD
 * (the same payload for every job instead of "job-<i>"), JOBS_DELAY (seconds),
 * JOBS_PRIORITY, JOBS_AUTO_ACK=1, JOBS_HEADERS (JSON {"name": "value" | [values]}).
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Jobs\Jobs;
use Fastrr\Jobs\Options;
use Fastrr\RPC\RPC;

if ($argc < 4 || !ctype_digit($argv[3]) || !in_array($argv[4] ?? 'single', ['single', 'batch'], true)) {
    fwrite(STDERR, "usage: php jobs_producer.php <rpc address> <pipeline> <N> [single|batch]\n");
    exit(2);
}
[, $address, $pipeline, $count] = $argv;
$mode = $argv[4] ?? 'single';
$count = (int)$count;

$env = static fn (string $name, string $default = ''): string => (string)(getenv($name) === false ? $default : getenv($name));

try {
    $options = new Options(
        delay: (int)$env('JOBS_DELAY', '0'),
        priority: (int)$env('JOBS_PRIORITY', '0'),
        autoAck: $env('JOBS_AUTO_ACK') === '1',
    );
    $headers = $env('JOBS_HEADERS') === '' ? [] : json_decode($env('JOBS_HEADERS'), true, 512, JSON_THROW_ON_ERROR);
    foreach ((array)$headers as $name => $value) {
        $options = $options->withHeader((string)$name, is_array($value) ? array_map('strval', $value) : (string)$value);
    }
    $name = $env('JOBS_NAME', 'ack');
    $payload = getenv('JOBS_PAYLOAD');

    $queue = (new Jobs(RPC::create($address)))->connect($pipeline, $options);
    $tasks = [];
    for ($i = 1; $i <= $count; $i++) {
        $tasks[] = $queue->create($name, $payload === false ? "job-$i" : $payload);
    }
    if ($mode === 'batch') {
        foreach ($tasks === [] ? [] : $queue->dispatchMany(...$tasks) as $task) {
            echo $task->getId(), "\n";
        }
    } else {
        foreach ($tasks as $task) {
            echo $queue->dispatch($task)->getId(), "\n"; // pushed so far stay printed if a later push fails
        }
    }
} catch (\Throwable $e) {
    fwrite(STDERR, $e->getMessage() . "\n");
    exit(1);
}
