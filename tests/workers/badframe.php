<?php

/*
 * Pollutes STDOUT on its first request: writes garbage straight to the pipe,
 * bypassing output interception, instead of a response frame. The server must
 * notice the invalid frame (bad version byte / CRC) and replace the worker.
 * After that it just waits; it never answers.
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Http\HttpWorker;
use Fastrr\Relay\RelayException;
use Fastrr\Worker;

$http = new HttpWorker(Worker::create());

try {
    while ($http->waitRequest() !== null) {
        fwrite(STDOUT, 'garbage!garbage!garbage!');
        fflush(STDOUT);
    }
} catch (RelayException) {
    // The server closed the pipe after rejecting the frame.
}
