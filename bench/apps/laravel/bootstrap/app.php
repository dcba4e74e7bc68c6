<?php

/*
 * The benchmark app's bootstrap (trimmed from tests/frameworks/laravel): Laravel 8 from Debian's
 * php-laravel-framework (no Composer), the app's classes by a small PSR-4 loader.
 *
 * Nothing is written next to the code (it may be a read-only installed package): storage goes to
 * APP_STORAGE and Laravel's caches (config, routes, packages, services, events) to
 * APP_CACHE_DIR, both set by `fastrr bench` to its temp dir. The config and route caches there are
 * built once at bench start by build-caches.php, as `artisan config:cache` / `route:cache` would.
 */

declare(strict_types=1);

require_once '/usr/share/php/Illuminate/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'App\\')) {
        $file = dirname(__DIR__) . '/app/' . str_replace('\\', '/', substr($class, 4)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

$app = new Illuminate\Foundation\Application(dirname(__DIR__));
$storage = getenv('APP_STORAGE') ?: ($_SERVER['APP_STORAGE'] ?? '');
if ($storage !== '') {
    $app->useStoragePath($storage);
}
$caches = getenv('APP_CACHE_DIR') ?: ($_SERVER['APP_CACHE_DIR'] ?? '');
if ($caches !== '') {
    $files = ['CONFIG' => 'config', 'ROUTES' => 'routes-v7', 'PACKAGES' => 'packages', 'SERVICES' => 'services',
              'EVENTS' => 'events'];
    foreach ($files as $key => $name) {
        $_SERVER["APP_{$key}_CACHE"] = $_ENV["APP_{$key}_CACHE"] = "$caches/$name.php";
    }
}

$app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
$app->singleton(Illuminate\Contracts\Console\Kernel::class, Illuminate\Foundation\Console\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
