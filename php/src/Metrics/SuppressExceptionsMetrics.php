<?php

declare(strict_types=1);

namespace Fastrr\Metrics;

use Fastrr\Metrics\Exception\MetricsException;
use Psr\Log\LoggerInterface;

/**
 * Metrics that never throw: a failed call is logged as a warning (when a
 * PSR-3 logger is given), so a metrics outage cannot fail a request.
 */
final class SuppressExceptionsMetrics implements MetricsInterface
{
    public function __construct(
        private readonly MetricsInterface $metrics,
        private readonly ?LoggerInterface $logger = null,
    ) {
    }

    public function add(string $name, float $value, array $labels = []): void
    {
        $this->quietly('Add', fn () => $this->metrics->add($name, $value, $labels));
    }

    public function sub(string $name, float $value, array $labels = []): void
    {
        $this->quietly('Sub', fn () => $this->metrics->sub($name, $value, $labels));
    }

    public function observe(string $name, float $value, array $labels = []): void
    {
        $this->quietly('Observe', fn () => $this->metrics->observe($name, $value, $labels));
    }

    public function set(string $name, float $value, array $labels = []): void
    {
        $this->quietly('Set', fn () => $this->metrics->set($name, $value, $labels));
    }

    public function declare(string $name, CollectorInterface $collector): void
    {
        $this->quietly('Declare', fn () => $this->metrics->declare($name, $collector));
    }

    public function unregister(string $name): void
    {
        $this->quietly('Unregister', fn () => $this->metrics->unregister($name));
    }

    private function quietly(string $operation, callable $call): void
    {
        try {
            $call();
        } catch (MetricsException $e) {
            $this->logger?->warning(\sprintf('[Metrics] Operation "%s" failed: %s', $operation, $e->getMessage()));
        }
    }
}
