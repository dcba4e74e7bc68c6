<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

/**
 * Lets code written for roadrunner-php/grpc run on this library unchanged:
 * service interfaces from protoc-gen-php-grpc extend
 * `Spiral\RoadRunner\GRPC\ServiceInterface` and type their methods with
 * `Spiral\RoadRunner\GRPC\ContextInterface`. After `RoadRunnerNames::register()`
 * each `Spiral\RoadRunner\GRPC\X` that no other autoloader provides becomes
 * an alias of `Fastrr\GRPC\X` (registered last, so the real package wins when
 * it is installed).
 */
final class RoadRunnerNames
{
    private const PREFIX = 'Spiral\\RoadRunner\\GRPC\\';
    private static bool $registered = false;

    public static function register(): void
    {
        if (self::$registered) {
            return;
        }
        self::$registered = true;
        \spl_autoload_register(static function (string $class): void {
            if (!\str_starts_with($class, self::PREFIX)) {
                return;
            }
            $ours = __NAMESPACE__ . '\\' . \substr($class, \strlen(self::PREFIX));
            if (\class_exists($ours) || \interface_exists($ours)) {
                \class_alias($ours, $class);
            }
        });
    }
}
