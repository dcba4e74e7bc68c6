<?php

declare(strict_types=1);

namespace Fastrr\Metrics;

use Fastrr\RPC\RPCInterface;
use Psr\Log\LoggerInterface;

/**
 * Metrics with retries, and optionally exceptions turned into warnings:
 *
 *   $metrics = (new MetricsFactory($logger))->create($rpc, new MetricsOptions(suppressExceptions: true));
 *
 * The logger is a PSR-3 logger when psr/log is installed; null logs nothing.
 */
final class MetricsFactory
{
    public function __construct(private readonly ?LoggerInterface $logger = null)
    {
    }

    public function create(RPCInterface $rpc, MetricsOptions $options = new MetricsOptions()): MetricsInterface
    {
        $metrics = new RetryMetrics(new Metrics($rpc), $options->retryAttempts, $options->retrySleepMicroseconds);
        return $options->suppressExceptions ? new SuppressExceptionsMetrics($metrics, $this->logger) : $metrics;
    }
}
