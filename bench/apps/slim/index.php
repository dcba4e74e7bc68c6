<?php

// php-fpm front controller: the Slim app is built, run and thrown away on every request.

declare(strict_types=1);

require_once 'Slim/autoload.php';
require __DIR__ . '/app.php';

bench_slim_app()->run();
