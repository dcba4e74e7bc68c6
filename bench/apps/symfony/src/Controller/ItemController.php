<?php

declare(strict_types=1);

namespace App\Controller;

use App\Service\Catalog;
use Symfony\Component\HttpFoundation\JsonResponse;

/** GET /api/item/{id}: a container parameter and a service from the container, as JSON. */
final class ItemController
{
    public function __construct(private readonly Catalog $catalog, private readonly string $appName)
    {
    }

    public function show(int $id): JsonResponse
    {
        return new JsonResponse($this->catalog->item($id) + ['app' => $this->appName]);
    }
}
