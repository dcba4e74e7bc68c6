<?php

declare(strict_types=1);

namespace Fastrr\Metrics;

use Fastrr\Metrics\Exception\MetricsException;

/**
 * Application metrics kept by the server (`metrics.*` RPC), the interface of
 * spiral/roadrunner-metrics. `$labels` are label values, in the order the
 * collector declared its labels.
 */
interface MetricsInterface
{
    /**
     * Adds to a counter or gauge (a counter only grows).
     *
     * @param list<string|int|float> $labels
     * @throws MetricsException
     */
    public function add(string $name, float $value, array $labels = []): void;

    /**
     * Subtracts from a gauge.
     *
     * @param list<string|int|float> $labels
     * @throws MetricsException
     */
    public function sub(string $name, float $value, array $labels = []): void;

    /**
     * Records one observation in a histogram or summary.
     *
     * @param list<string|int|float> $labels
     * @throws MetricsException
     */
    public function observe(string $name, float $value, array $labels = []): void;

    /**
     * Sets a gauge.
     *
     * @param list<string|int|float> $labels
     * @throws MetricsException
     */
    public function set(string $name, float $value, array $labels = []): void;

    /**
     * Declares a collector at run time; declaring a name that exists keeps the first one.
     *
     * @throws MetricsException
     */
    public function declare(string $name, CollectorInterface $collector): void;

    /**
     * Removes a collector and its series.
     *
     * @throws MetricsException
     */
    public function unregister(string $name): void;
}
