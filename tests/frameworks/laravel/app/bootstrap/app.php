<?php

/*
 * The test app's bootstrap: Laravel 8 from Debian's php-laravel-framework (no Composer), the
 * app's own classes by a small PSR-4 loader, storage in APP_STORAGE (each server gets its own).
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
    // Laravel's caches (package manifest, services) go to bootstrap/cache unless told otherwise:
    // keep the checkout read-only, each server writes into its own storage.
    foreach (['PACKAGES', 'SERVICES'] as $cache) {
        $file = "$storage/framework/cache/" . strtolower($cache) . '.php';
        $_SERVER["APP_{$cache}_CACHE"] = $_ENV["APP_{$cache}_CACHE"] = $file;
    }
}

$app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
