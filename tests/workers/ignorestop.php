<?php

/*
 * A worker that ignores the server's {"stop":true} control frame: it answers
 * every request with {"pid":..}, and when asked to stop it says so on stderr
 * and carries on sleeping, so only SIGKILL (after http.pool.stop_timeout) ends it.
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Worker;

$http = new HttpWorker(Worker::create());
while (true) {
    $request = $http->waitRequest();
    if ($request === null) {
        fwrite(STDERR, "ignorestop: stop frame received, ignoring it\n");
        while (true) {
            sleep(60);
        }
    }
    $http->respond(200, json_encode(['pid' => getmypid()]), ['Content-Type' => ['application/json']]);
}
