<?php

/*
 * A worker whose bootstrap fails: it complains on stderr and exits 1 before
 * reading anything from the relay (the PID handshake never gets an answer).
 */

declare(strict_types=1);

fwrite(STDERR, "fatal: cannot connect to database (simulated boot failure)\n");
exit(1);
