<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Internal;

/**
 * Makes Google's protobuf runtime loadable when no Composer autoloader
 * provides it: Debian's php-google-protobuf installs Google\Protobuf\* and
 * GPBMetadata\Google\* under the include path without an autoloader.
 *
 * @internal
 */
final class Protobuf
{
    private static bool $done = false;

    public static function autoload(): void
    {
        if (self::$done || \class_exists(\Google\Protobuf\Internal\Message::class)) {
            self::$done = true;
            return;
        }
        self::$done = true;
        $lib = \stream_resolve_include_path('Google/Protobuf/Internal/Message.php');
        if ($lib === false) {
            return; // the Invoker reports the missing library when a message is needed
        }
        $root = \dirname($lib, 4);
        \spl_autoload_register(static function (string $class) use ($root): void {
            if (\str_starts_with($class, 'Google\\Protobuf\\') || \str_starts_with($class, 'GPBMetadata\\Google\\')) {
                $file = $root . '/' . \str_replace('\\', '/', $class) . '.php';
                if (\is_file($file)) {
                    require $file;
                }
            }
        });
    }
}
