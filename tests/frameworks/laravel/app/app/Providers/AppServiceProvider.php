<?php

declare(strict_types=1);

namespace App\Providers;

use App\Auth\MemoryUserProvider;
use App\Services\BootCounter;
use App\Services\Greeter;
use App\Services\RequestContext;
use App\Services\RequestHolder;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\ServiceProvider;

final class AppServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->app->singleton(Greeter::class, static fn ($app) => new Greeter((string)$app['config']['app.greeting']));
        // Built on first use during a request: each request gets its own (it lives in the sandbox).
        $this->app->singleton(RequestHolder::class, static fn ($app) => new RequestHolder($app['request']));
        // Scoped: one per request, by Laravel's own definition.
        $this->app->scoped(RequestContext::class);
        // Resolved at boot: shared by every request of a worker, on purpose (not reset).
        $this->app->singleton(BootCounter::class);
    }

    public function boot(): void
    {
        Auth::provider('memory', static fn () => new MemoryUserProvider());
        $this->app->make(BootCounter::class);

        Route::middleware('web')->group(base_path('routes/web.php'));
        Route::prefix('api')->group(base_path('routes/api.php'));
        // Names given after a route was added (->name()) are looked up only after a refresh,
        // which Laravel's RouteServiceProvider would do.
        $routes = $this->app['router']->getRoutes();
        $routes->refreshNameLookups();
        $routes->refreshActionLookups();
    }
}
