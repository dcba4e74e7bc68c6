<?php

declare(strict_types=1);

namespace Fastrr\Metrics;

/**
 * How MetricsFactory wraps the client: retries (each after a short sleep),
 * and whether failures are logged instead of thrown.
 */
final class MetricsOptions
{
    public function __construct(
        public readonly int $retryAttempts = 3,
        public readonly int $retrySleepMicroseconds = 50,
        public readonly bool $suppressExceptions = false,
    ) {
    }
}
