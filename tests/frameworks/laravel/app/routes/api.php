<?php

/*
 * Routes outside the "web" group: no session, no cookie middleware.
 */

declare(strict_types=1);

use App\Services\Greeter;
use Illuminate\Support\Facades\Cookie;
use Illuminate\Support\Facades\Route;

// A JSON API route that reads config and a service from the container.
Route::get('/json', static fn (Greeter $greeter) => response()->json([
    'app' => config('app.name'),
    'greeting' => $greeter->greet('api'),
]));

// Queues a cookie that no middleware sends: it must not come out with the next request.
Route::get('/queue-cookie', static function () {
    Cookie::queue('leaked', 'from-an-earlier-request', 10);
    return response()->json(['queued' => true]);
});
