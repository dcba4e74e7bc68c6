<?php

declare(strict_types=1);

namespace App\Services;

/** A service the container builds from configuration (config/catalog.php). */
final class Catalog
{
    public function __construct(private readonly string $currency, private readonly int $vatPercent)
    {
    }

    /** @return array<string, mixed> */
    public function item(int $id): array
    {
        $net = 1000 + $id * 7;
        return [
            'id' => $id,
            'name' => "item $id",
            'price' => ['net' => $net, 'gross' => intdiv($net * (100 + $this->vatPercent), 100),
                        'currency' => $this->currency],
            'tags' => ['bench', 'laravel'],
        ];
    }
}
