<?php

declare(strict_types=1);

namespace App\Providers;

use App\Services\Catalog;
use Illuminate\Support\ServiceProvider;

final class AppServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->app->singleton(Catalog::class, static fn ($app) => new Catalog(
            (string)$app['config']['catalog.currency'],
            (int)$app['config']['catalog.vat_percent'],
        ));
    }
}
