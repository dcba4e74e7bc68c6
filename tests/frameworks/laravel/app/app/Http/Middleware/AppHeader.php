<?php

declare(strict_types=1);

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\View;

/**
 * The app's own middleware: a response header, and (?share=x) view data shared for this request
 * only, which the next request must not see.
 */
final class AppHeader
{
    public function handle(Request $request, Closure $next): mixed
    {
        if ($request->query->has('share')) {
            View::share('shared_by_request', (string)$request->query('share'));
        }
        $response = $next($request);
        $response->headers->set('X-App', 'laravel-test');
        return $response;
    }
}
