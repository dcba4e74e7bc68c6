<?php

declare(strict_types=1);

namespace App\Providers;

use Illuminate\Foundation\Support\Providers\RouteServiceProvider as ServiceProvider;
use Illuminate\Support\Facades\Route;

/** routes/api.php under /api with the "api" middleware group; the route cache when one is built. */
final class RouteServiceProvider extends ServiceProvider
{
    public function boot(): void
    {
        $this->routes(function (): void {
            Route::prefix('api')->middleware('api')->group(base_path('routes/api.php'));
        });
    }
}
