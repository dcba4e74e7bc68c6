<?php

/*
 * The front controller php-fpm runs for every request, as in a stock Laravel 8 app. Under fastrr,
 * php/bin/fastrr-laravel-worker (FASTRR_LARAVEL_BASE_PATH = this app) boots the app once instead.
 */

declare(strict_types=1);

$app = require __DIR__ . '/../bootstrap/app.php';

$kernel = $app->make(Illuminate\Contracts\Http\Kernel::class);
$response = $kernel->handle($request = Illuminate\Http\Request::capture())->send();
$kernel->terminate($request, $response);
