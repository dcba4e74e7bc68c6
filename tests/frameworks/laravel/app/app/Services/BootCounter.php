<?php

declare(strict_types=1);

namespace App\Services;

/** Resolved once at boot: counts the requests a worker served (state that persists, as documented). */
final class BootCounter
{
    public int $requests = 0;
}
