<?php

/*
 * Answers the PID handshake, complains on stderr and exits without serving:
 * what a worker script that does not loop on waitRequest() looks like to the
 * server (or one that dies right after booting).
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Frame;
use Fastrr\Relay\StreamRelay;

$relay = new StreamRelay();
$relay->waitFrame();
$relay->send(new Frame('{"pid":' . getmypid() . '}', [], Frame::CONTROL));
fwrite(STDERR, "quitting right after the handshake\n");
exit(1);
