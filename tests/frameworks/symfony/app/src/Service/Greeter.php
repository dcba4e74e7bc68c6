<?php

declare(strict_types=1);

namespace App\Service;

/**
 * A service built by the container from a config parameter (app.greeting): what a JSON API route
 * reads from the container.
 */
final class Greeter
{
    public function __construct(private readonly string $greeting)
    {
    }

    public function greet(string $name): string
    {
        return $this->greeting . ', ' . $name . '!';
    }
}
