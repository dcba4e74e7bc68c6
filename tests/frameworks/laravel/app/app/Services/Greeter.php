<?php

declare(strict_types=1);

namespace App\Services;

/** A service from the container, injected into the controller's constructor. */
final class Greeter
{
    public function __construct(private readonly string $greeting)
    {
    }

    public function greet(string $name): string
    {
        return "{$this->greeting}, {$name}";
    }
}
