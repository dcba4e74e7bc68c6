<?php

declare(strict_types=1);

namespace Fastrr\Metrics;

/**
 * An immutable collector declaration:
 *
 *   $metrics->declare('orders', Collector::counter()->withHelp('Orders placed.')->withLabels('status'));
 *   $metrics->declare('latency', Collector::histogram(0.01, 0.1, 1)->withNamespace('shop'));
 *
 * The server exports it as namespace_subsystem_name. Histograms without
 * buckets get the Prometheus defaults.
 */
final class Collector implements CollectorInterface, \JsonSerializable
{
    private string $namespace = '';
    private string $subsystem = '';
    private string $help = '';
    /** @var list<string> */
    private array $labels = [];
    /** @var list<float> */
    private array $buckets = [];

    private function __construct(public readonly CollectorType $type)
    {
    }

    public static function histogram(float ...$bucket): self
    {
        $self = new self(CollectorType::Histogram);
        $self->buckets = \array_values($bucket);
        return $self;
    }

    public static function gauge(): self
    {
        return new self(CollectorType::Gauge);
    }

    public static function counter(): self
    {
        return new self(CollectorType::Counter);
    }

    public static function summary(): self
    {
        return new self(CollectorType::Summary);
    }

    public function withNamespace(string $namespace): self
    {
        $self = clone $this;
        $self->namespace = $namespace;
        return $self;
    }

    public function withSubsystem(string $subsystem): self
    {
        $self = clone $this;
        $self->subsystem = $subsystem;
        return $self;
    }

    public function withHelp(string $help): self
    {
        $self = clone $this;
        $self->help = $help;
        return $self;
    }

    public function withLabels(string ...$label): self
    {
        $self = clone $this;
        $self->labels = \array_values($label);
        return $self;
    }

    public function toArray(): array
    {
        return [
            'namespace' => $this->namespace,
            'subsystem' => $this->subsystem,
            'type' => $this->type->value,
            'help' => $this->help,
            'labels' => $this->labels,
            'buckets' => $this->buckets,
        ];
    }

    public function jsonSerialize(): array
    {
        return $this->toArray();
    }
}
