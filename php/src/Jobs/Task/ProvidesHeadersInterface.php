<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

interface ProvidesHeadersInterface
{
    /** @return array<string, list<string>> */
    public function getHeaders(): array;

    public function hasHeader(string $name): bool;

    /** @return list<string> */
    public function getHeader(string $name): array;

    /** The values joined with ",". */
    public function getHeaderLine(string $name): string;
}
