<?php

/*
 * The front controller php-fpm runs (nginx: try_files $uri /index.php?$query_string), as in a
 * stock Laravel 8 app. Under fastrr, php/bin/fastrr-laravel-worker replaces it.
 */

declare(strict_types=1);

$app = require __DIR__ . '/../bootstrap/app.php';

$kernel = $app->make(Illuminate\Contracts\Http\Kernel::class);
$response = $kernel->handle($request = Illuminate\Http\Request::capture())->send();
$kernel->terminate($request, $response);
