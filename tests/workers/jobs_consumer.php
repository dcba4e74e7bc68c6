<?php

/*
 * A jobs worker (RR_MODE=jobs) for the server tests, built on Fastrr\Jobs.
 * What it does with a task depends on the task's NAME:
 *
 *   ack            ack()
 *   nack           nack("nacked")
 *   nack-requeue   first delivery: nack("again", redelivery: true); a later one: ack()
 *   nack-forever   nack("poison", redelivery: true), every time
 *   requeue        without header x-requeued: withDelay(payload {"delay":N}, default 0)
 *                  ->withHeader("x-requeued", "1")->requeue("requeued"); with it: ack()
 *   fail           fail("failed") (type 1, requeue false: the server drops the job)
 *   crash          if the file $JOBS_CRASH_MARKER does not exist: create it and exit(1)
 *                  in the middle of the job; otherwise ack()
 *   sleep          usleep(payload {"ms":N} * 1000), then ack()
 *   garbage        first delivery: a reply frame whose body is not JSON; later: ack()
 *   badtype        first delivery: {"type":99,"data":[]}; later: ack()
 *   error          first delivery: an ERROR frame ($worker->error()); later: ack()
 *   anything else  ack()
 *
 * "First delivery" is per job id: a marker file <id>.<name> in $JOBS_MARKERS
 * (default "$JOBS_LOG.d"), created on the first one.
 *
 * Every task is logged on receipt, BEFORE acting, as one JSON line appended
 * to $JOBS_LOG (under flock LOCK_EX):
 *   {"id","name","pipeline","payload","headers","pid","t"}   t = microtime(true)
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Jobs\Consumer;
use Fastrr\Jobs\Task\ReceivedTaskInterface;
use Fastrr\Payload;
use Fastrr\Worker;

$log = (string)getenv('JOBS_LOG');
$markers = (string)(getenv('JOBS_MARKERS') ?: ($log !== '' ? $log . '.d' : sys_get_temp_dir() . '/fastrr-jobs-markers'));

$record = static function (ReceivedTaskInterface $task) use ($log): void {
    if ($log === '') {
        return;
    }
    $line = json_encode([
        'id' => $task->getId(),
        'name' => $task->getName(),
        'pipeline' => $task->getPipeline(),
        'payload' => $task->getPayload(),
        'headers' => (object)$task->getHeaders(),
        'pid' => getmypid(),
        't' => microtime(true),
    ], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE) . "\n";
    $fh = fopen($log, 'ab');
    if ($fh === false) {
        fwrite(STDERR, "jobs_consumer: cannot open $log\n");
        return;
    }
    flock($fh, LOCK_EX);
    fwrite($fh, $line);
    fflush($fh);
    flock($fh, LOCK_UN);
    fclose($fh);
};

/** True the first time it is asked about this task (it leaves a marker file). */
$firstTime = static function (ReceivedTaskInterface $task) use ($markers): bool {
    if (!is_dir($markers)) {
        @mkdir($markers, 0777, true);
    }
    $file = $markers . '/' . preg_replace('/[^A-Za-z0-9._-]/', '_', $task->getId() . '.' . $task->getName());
    $fh = @fopen($file, 'x'); // fails when it exists: atomic across workers
    if ($fh === false) {
        return false;
    }
    fclose($fh);
    return true;
};

$payloadInt = static function (ReceivedTaskInterface $task, string $key): int {
    $data = json_decode($task->getPayload(), true);
    return is_array($data) && isset($data[$key]) && is_numeric($data[$key]) ? (int)$data[$key] : 0;
};

$worker = Worker::create();
$consumer = new Consumer($worker);

while (true) {
    try {
        $task = $consumer->waitTask();
    } catch (\Fastrr\Jobs\Exception\JobsException $e) {
        fwrite(STDERR, 'jobs_consumer: unreadable task: ' . $e->getMessage() . "\n");
        continue; // the Consumer already answered it with an error frame
    }
    if ($task === null) {
        break;
    }
    $record($task);

    try {
        switch ($task->getName()) {
            case 'nack':
                $task->nack('nacked');
                break;
            case 'nack-requeue':
                $firstTime($task) ? $task->nack('again', true) : $task->ack();
                break;
            case 'nack-forever':
                $task->nack('poison', true);
                break;
            case 'requeue':
                if ($task->hasHeader('x-requeued')) {
                    $task->ack();
                } else {
                    $task->withDelay($payloadInt($task, 'delay'))->withHeader('x-requeued', '1')->requeue('requeued');
                }
                break;
            case 'fail':
                $task->fail('failed');
                break;
            case 'crash':
                $marker = (string)getenv('JOBS_CRASH_MARKER');
                if ($marker !== '' && !file_exists($marker)) {
                    touch($marker);
                    exit(1);
                }
                $task->ack();
                break;
            case 'sleep':
                usleep($payloadInt($task, 'ms') * 1000);
                $task->ack();
                break;
            case 'garbage':
                $firstTime($task) ? $worker->respond(new Payload('this is not json {')) : $task->ack();
                break;
            case 'badtype':
                $firstTime($task) ? $worker->respond(new Payload('{"type":99,"data":[]}')) : $task->ack();
                break;
            case 'error':
                $firstTime($task) ? $worker->error('jobs_consumer: error frame for ' . $task->getId()) : $task->ack();
                break;
            default:
                $task->ack();
        }
    } catch (\Throwable $e) {
        $worker->error((string)$e);
    }
}
