<?php

declare(strict_types=1);

namespace App\Services;

use Illuminate\Http\Request;

/** A singleton that keeps the request it was built with: the classic long-lived-worker leak. */
final class RequestHolder
{
    public function __construct(public readonly Request $request)
    {
    }
}
