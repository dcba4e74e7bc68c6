<?php

/*
 * A worker that serves ANSWERS requests (default 1) and exits right after the
 * last answer, as a PHP-side request limit or a memory guard does; every
 * request it reads is logged to $RUN_LOG ("<pid> <path>"), so a test can tell
 * a request that ran twice from one that never ran. /read-and-die reads its
 * request and exits without answering (a crash mid-request: never re-run).
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Worker;

$http = new HttpWorker(Worker::create());
$left = max(1, (int)(getenv('ANSWERS') ?: 1));
$log = (string)getenv('RUN_LOG');

while ($request = $http->waitRequest()) {
    file_put_contents($log, getmypid() . ' ' . parse_url($request->uri, PHP_URL_PATH) . "\n", FILE_APPEND | LOCK_EX);
    if (parse_url($request->uri, PHP_URL_PATH) === '/read-and-die') {
        exit(0);
    }
    $http->respond(200, (string)getmypid());
    if (--$left === 0) {
        exit(0);
    }
}
