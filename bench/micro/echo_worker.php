<?php

/*
 * Echo worker for the relay round-trip benchmark (bench/micro/ring_vs_pipes.py):
 * every frame goes straight back. The relay is what fastrr's library picks:
 * the shm ring when FASTRR_RING is set (and FFI works), pipes otherwise.
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

$relay = Fastrr\Relay\Relay::create('pipes');
fwrite(STDERR, 'echo worker on ' . get_class($relay) . "\n");
while (true) {
    try {
        $frame = $relay->waitFrame();
    } catch (Fastrr\Relay\RelayException) {
        exit(0);
    }
    $relay->send($frame);
}
