<?php

// fastrr bench, jobs: a consumer that acks every job it gets (RR_MODE=jobs), nothing else,
// so what is measured is the delivery and the ack, not a job's work.

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';

use Fastrr\Jobs\Consumer;
use Fastrr\Worker;

$consumer = new Consumer(Worker::create());
while ($task = $consumer->waitTask()) {
    $task->ack();
}
