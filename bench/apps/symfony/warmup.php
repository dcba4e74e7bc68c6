<?php

/*
 * `php warmup.php`: builds and warms the prod container cache in APP_VAR_DIR (what
 * `bin/console cache:warmup --env=prod` does), so that php-fpm's first request and fastrr's
 * workers all find it built instead of racing to build it. `fastrr bench` runs it once per run.
 */

declare(strict_types=1);

require __DIR__ . '/vendor/autoload.php';

$env = (string)($_SERVER['APP_ENV'] ?? getenv('APP_ENV') ?: 'prod');
$kernel = new App\Kernel($env, false);
$kernel->boot(); // a fresh container is compiled, dumped and warmed (router matcher included)
$kernel->getContainer()->get('router')->getMatcher(); // the compiled route matcher, written at first use
echo json_encode(['cache_dir' => $kernel->getCacheDir(), 'env' => $env]), PHP_EOL;
