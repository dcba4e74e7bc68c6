<?php

declare(strict_types=1);

namespace App\Http\Middleware;

use Illuminate\Auth\Middleware\Authenticate as Middleware;

final class Authenticate extends Middleware
{
    /** Not logged in: a JSON 401 rather than a redirect to a login page. */
    protected function redirectTo($request): ?string
    {
        return null;
    }
}
