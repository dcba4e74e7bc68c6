<?php

declare(strict_types=1);

namespace App\Http\Middleware;

use Illuminate\Cookie\Middleware\EncryptCookies as Middleware;

/** Cookies are encrypted, except "plain", whose value the differential test compares as it is. */
final class EncryptCookies extends Middleware
{
    /** @var array<int, string> */
    protected $except = ['plain', 'theme'];
}
