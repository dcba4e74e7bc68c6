<?php

declare(strict_types=1);

namespace Fastrr\Metrics;

/**
 * A collector declaration, sent by Metrics::declare().
 *
 * @psalm-type ArrayFormatType = array{
 *      type: non-empty-string,
 *      namespace: string,
 *      subsystem: string,
 *      help: string,
 *      labels: list<string>,
 *      buckets: list<float>
 * }
 */
interface CollectorInterface
{
    public function withNamespace(string $namespace): self;

    public function withSubsystem(string $subsystem): self;

    public function withHelp(string $help): self;

    public function withLabels(string ...$label): self;

    /**
     * @return ArrayFormatType
     */
    public function toArray(): array;
}
