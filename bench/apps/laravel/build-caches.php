<?php

/*
 * `php build-caches.php`: what `artisan config:cache` and `artisan route:cache` write, for an app
 * without artisan. `fastrr bench` runs it once per run with APP_STORAGE and APP_CACHE_DIR set to
 * its temp dir, before php-fpm and fastrr start; both then load the same cache files. The
 * packages and services manifests are written there too, by the bootstrap itself.
 */

declare(strict_types=1);

$app = require __DIR__ . '/bootstrap/app.php';
$dir = (string)(getenv('APP_CACHE_DIR') ?: '');
if ($dir === '' || !is_dir($dir)) {
    fwrite(STDERR, "build-caches.php: APP_CACHE_DIR must name an existing directory\n");
    exit(2);
}
foreach (['config', 'routes-v7'] as $name) {
    @unlink("$dir/$name.php"); // a fresh build: nothing cached is read while building
}
$app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();

$config = $app['config']->all();
file_put_contents($app->getCachedConfigPath(), '<?php return ' . var_export($config, true) . ';' . PHP_EOL);

$routes = $app['router']->getRoutes();
$routes->refreshNameLookups();
$routes->refreshActionLookups();
foreach ($routes as $route) {
    $route->prepareForSerialization();
}
$stub = "<?php\n\napp('router')->setCompiledRoutes(\n    %s\n);\n";
file_put_contents($app->getCachedRoutesPath(), sprintf($stub, var_export($routes->compile(), true)));

echo json_encode(['config' => $app->getCachedConfigPath(), 'routes' => $app->getCachedRoutesPath(),
                  'count' => count($routes)]), PHP_EOL;
