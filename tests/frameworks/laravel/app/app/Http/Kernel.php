<?php

declare(strict_types=1);

namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

final class Kernel extends HttpKernel
{
    /** @var array<int, class-string> */
    protected $middleware = [
        Middleware\TrustProxies::class,
    ];

    /** @var array<string, array<int, class-string>> */
    protected $middlewareGroups = [
        'web' => [
            Middleware\EncryptCookies::class,
            \Illuminate\Cookie\Middleware\AddQueuedCookiesToResponse::class,
            \Illuminate\Session\Middleware\StartSession::class,
            \Illuminate\Routing\Middleware\SubstituteBindings::class,
            Middleware\AppHeader::class,
        ],
    ];

    /** @var array<string, class-string> */
    protected $routeMiddleware = [
        'auth' => Middleware\Authenticate::class,
    ];
}
