<?php

/*
 * Standing in for Composer's vendor/autoload.php: Debian's packaged Symfony 5.4
 * (php-symfony-framework-bundle, php-symfony-runtime: their autoload.php files register class
 * maps), fastrr's PHP library (for Fastrr\Symfony\Runtime) and App\ from src/ (PSR-4).
 */

declare(strict_types=1);

require_once __DIR__ . '/../../../../php/autoload.php'; // also adds Debian's /usr/share/php to the include path

foreach (['Symfony/Bundle/FrameworkBundle/autoload.php', 'Symfony/Component/Runtime/autoload.php'] as $file) {
    $path = stream_resolve_include_path($file);
    if ($path === false) {
        throw new RuntimeException("$file not found: apt-get install php-symfony-framework-bundle php-symfony-runtime");
    }
    require_once $path;
}

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'App\\', 4) === 0) {
        $file = dirname(__DIR__) . '/src/' . str_replace('\\', '/', substr($class, 4)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
