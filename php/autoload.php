<?php

/*
 * Autoloader for fastrr's PHP library, for use without Composer:
 *
 *     require __DIR__ . '/path/to/php/autoload.php';
 *
 * Loads Fastrr\* from src/ (PSR-4). When the PSR-7 / PSR-17 interfaces or
 * Nyholm's PSR-7 implementation are not loadable yet, it also hooks in the
 * Debian packages (php-psr-http-message, php-psr-http-factory,
 * php-nyholm-psr7, php-psr-log), which live on Debian's include path.
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'Fastrr\\', 7) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 7)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});

(static function (): void {
    // Debian installs PHP libraries under this include path entry.
    $debian = '/usr/share/php';
    $paths = explode(PATH_SEPARATOR, (string)get_include_path());
    if (!in_array($debian, $paths, true) && is_dir($debian)) {
        set_include_path(get_include_path() . PATH_SEPARATOR . $debian);
    }

    // Debian's autoload.php files only register class maps; nothing is loaded
    // until a class is used. Skip the ones a Composer autoloader already covers.
    $files = [];
    if (!interface_exists(\Psr\Http\Message\MessageInterface::class)) {
        $files[] = 'Psr/Http/Message/autoload.php';
    }
    if (!interface_exists(\Psr\Http\Message\ServerRequestFactoryInterface::class)) {
        $files[] = 'Psr/Http/Message/factory-autoload.php';
    }
    if (!class_exists(\Nyholm\Psr7\Factory\Psr17Factory::class)) {
        $files[] = 'Nyholm/Psr7/autoload.php';
    }
    if (!interface_exists(\Psr\Log\LoggerInterface::class)) {
        $files[] = 'Psr/Log/autoload.php'; // php-psr-log, for Fastrr\Logger\PsrLogger
    }
    foreach ($files as $file) {
        $path = stream_resolve_include_path($file);
        if ($path !== false) {
            require_once $path;
        }
    }
})();
