<?php

declare(strict_types=1);

namespace App\Http\Middleware;

use Illuminate\Http\Middleware\TrustProxies as Middleware;
use Illuminate\Http\Request;

/** Both servers' clients connect from 127.0.0.1: X-Forwarded-* from there is believed. */
final class TrustProxies extends Middleware
{
    /** @var array<int, string>|string|null */
    protected $proxies = ['127.0.0.1'];

    /** @var int */
    protected $headers = Request::HEADER_X_FORWARDED_FOR | Request::HEADER_X_FORWARDED_HOST
        | Request::HEADER_X_FORWARDED_PORT | Request::HEADER_X_FORWARDED_PROTO;
}
