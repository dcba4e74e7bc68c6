<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

/**
 * Immutable header changes: each method returns a modified copy.
 */
interface WritableHeadersInterface extends ProvidesHeadersInterface
{
    /** @param string|iterable<string|\Stringable|int|float> $value */
    public function withHeader(string $name, string|iterable $value): self;

    /** @param string|iterable<string|\Stringable|int|float> $value */
    public function withAddedHeader(string $name, string|iterable $value): self;

    public function withoutHeader(string $name): self;
}
