<?php

/*
 * A jobs worker (RR_MODE=jobs) whose app keeps every task's name in a static
 * array, for the state-leak detector on a jobs pool (tests/integration/test_leaks_state.py).
 * Every task is acked.
 */

declare(strict_types=1);

namespace App {
    final class Seen
    {
        /** @var list<string> */
        public static array $names = [];
    }
}

namespace {
    require __DIR__ . '/../../php/autoload.php';

    use Fastrr\Jobs\Consumer;

    $consumer = new Consumer();
    while ($task = $consumer->waitTask()) {
        App\Seen::$names[] = $task->getName();
        $task->ack();
    }
}
