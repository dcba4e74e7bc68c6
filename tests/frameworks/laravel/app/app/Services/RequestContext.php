<?php

declare(strict_types=1);

namespace App\Services;

/** A scoped binding: one instance per request, with its own id. */
final class RequestContext
{
    public readonly string $id;

    /** @var array<string, string> */
    public array $notes = [];

    public function __construct()
    {
        $this->id = bin2hex(random_bytes(6));
    }
}
