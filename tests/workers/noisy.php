<?php

/*
 * Prints ~80 KB to stdout before loading the library (more than a pipe holds),
 * then runs app.php. On a socket relay stdout carries no frames: the server
 * must read it anyway, or this worker blocks before its handshake.
 */

declare(strict_types=1);

for ($i = 0; $i < 20; $i++) {
    echo "boot noise line $i " . str_repeat('n', 4000) . "\n";
}
require __DIR__ . '/app.php';
