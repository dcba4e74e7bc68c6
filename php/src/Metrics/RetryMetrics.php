<?php

declare(strict_types=1);

namespace Fastrr\Metrics;

use Fastrr\Metrics\Exception\MetricsException;

/**
 * Tries each call up to 1 + $retryAttempts times, sleeping in between; the
 * last failure is thrown.
 */
final class RetryMetrics implements MetricsInterface
{
    public function __construct(
        private readonly MetricsInterface $metrics,
        private readonly int $retryAttempts = 3,
        private readonly int $retrySleepMicroseconds = 50,
    ) {
    }

    public function add(string $name, float $value, array $labels = []): void
    {
        $this->retry(fn () => $this->metrics->add($name, $value, $labels));
    }

    public function sub(string $name, float $value, array $labels = []): void
    {
        $this->retry(fn () => $this->metrics->sub($name, $value, $labels));
    }

    public function observe(string $name, float $value, array $labels = []): void
    {
        $this->retry(fn () => $this->metrics->observe($name, $value, $labels));
    }

    public function set(string $name, float $value, array $labels = []): void
    {
        $this->retry(fn () => $this->metrics->set($name, $value, $labels));
    }

    public function declare(string $name, CollectorInterface $collector): void
    {
        $this->retry(fn () => $this->metrics->declare($name, $collector));
    }

    public function unregister(string $name): void
    {
        $this->retry(fn () => $this->metrics->unregister($name));
    }

    private function retry(callable $call): void
    {
        for ($attempt = 0; ; $attempt++) {
            try {
                $call();
                return;
            } catch (MetricsException $e) {
                if ($attempt >= $this->retryAttempts) {
                    throw $e;
                }
            }
            if ($this->retrySleepMicroseconds > 0) {
                \usleep($this->retrySleepMicroseconds);
            }
        }
    }
}
