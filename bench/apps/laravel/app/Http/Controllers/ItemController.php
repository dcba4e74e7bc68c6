<?php

declare(strict_types=1);

namespace App\Http\Controllers;

use App\Services\Catalog;
use Illuminate\Http\JsonResponse;

/** GET /api/item/{id}: a config value and a service from the container, as JSON. */
final class ItemController
{
    public function __construct(private readonly Catalog $catalog)
    {
    }

    public function show(int $id): JsonResponse
    {
        return new JsonResponse($this->catalog->item($id) + ['app' => config('app.name')]);
    }
}
