<?php

/*
 * A worker with a slow bootstrap: sleeps BOOT_MS milliseconds (default 1000)
 * before it starts its loop, then serves exactly like app.php. The PID
 * handshake is only answered once the loop runs, so the sleep counts against
 * the server's boot/allocate timeout.
 */

declare(strict_types=1);

$bootMs = (int)(getenv('BOOT_MS') ?: 1000);
usleep(max(0, $bootMs) * 1000);

require __DIR__ . '/app.php';
