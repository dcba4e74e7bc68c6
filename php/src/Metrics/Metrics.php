<?php

declare(strict_types=1);

namespace Fastrr\Metrics;

use Fastrr\Metrics\Exception\MetricsException;
use Fastrr\RPC\Codec\JsonCodec;
use Fastrr\RPC\Exception\RPCException;
use Fastrr\RPC\RPC;
use Fastrr\RPC\RPCInterface;

/**
 * The server's application metrics over RPC (JSON, service `metrics`), the
 * calls spiral/roadrunner-metrics makes, so it works against RoadRunner too:
 *
 *   $metrics = new Metrics(RPC::create('tcp://127.0.0.1:6001'));   // or new Metrics(): RR_RPC
 *   $metrics->declare('orders', Collector::counter()->withLabels('status'));
 *   $metrics->add('orders', 1, ['paid']);
 *
 * Label values may be given as ints or floats (sent as strings) and in an
 * array with keys (sent in its order), where roadrunner-metrics sends them
 * as they are and RoadRunner refuses anything but a list of strings.
 */
final class Metrics implements MetricsInterface
{
    private const SERVICE = 'metrics';

    private readonly RPCInterface $rpc;

    public function __construct(?RPCInterface $rpc = null)
    {
        $this->rpc = ($rpc ?? RPC::fromEnvironment())->withCodec(new JsonCodec())->withServicePrefix(self::SERVICE);
    }

    public function add(string $name, float $value, array $labels = []): void
    {
        $this->call('Add', self::metric($name, $value, $labels));
    }

    public function sub(string $name, float $value, array $labels = []): void
    {
        $this->call('Sub', self::metric($name, $value, $labels));
    }

    public function observe(string $name, float $value, array $labels = []): void
    {
        $this->call('Observe', self::metric($name, $value, $labels));
    }

    public function set(string $name, float $value, array $labels = []): void
    {
        $this->call('Set', self::metric($name, $value, $labels));
    }

    public function declare(string $name, CollectorInterface $collector): void
    {
        try {
            $this->call('Declare', ['name' => $name, 'collector' => $collector->toArray()]);
        } catch (MetricsException $e) {
            // RoadRunner before 2024.3 refused a second Declare of a name; fastrr
            // and newer RoadRunner answer true and keep the first collector.
            if (!\str_contains($e->getMessage(), 'tried to register existing collector')) {
                throw $e;
            }
        }
    }

    public function unregister(string $name): void
    {
        $this->call('Unregister', $name);
    }

    /**
     * @param array<array-key, string|int|float> $labels
     * @return array{name: string, value: float, labels: list<string>}
     */
    private static function metric(string $name, float $value, array $labels): array
    {
        $values = [];
        foreach ($labels as $label) {
            $values[] = (string)$label;
        }
        return ['name' => $name, 'value' => $value, 'labels' => $values];
    }

    private function call(string $method, mixed $payload): void
    {
        try {
            $this->rpc->call($method, $payload);
        } catch (RPCException $e) {
            throw new MetricsException($e->getMessage(), (int)$e->getCode(), $e);
        }
    }
}
