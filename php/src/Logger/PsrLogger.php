<?php

declare(strict_types=1);

namespace Fastrr\Logger;

/*
 * PSR-3 (Psr\Log\LoggerInterface) is implemented when the application has
 * psr/log loaded, any version: v1 declares untyped `$message` parameters and no
 * return types, v2 types `$message`, v3 adds `: void`. The methods below leave
 * `$message` untyped (a wider parameter satisfies all three) and return void
 * (allowed where the interface declares nothing), so one class fits each.
 */
if (\interface_exists(\Psr\Log\LoggerInterface::class)) {
    interface PsrLoggerBaseInterface extends \Psr\Log\LoggerInterface
    {
    }
} else {
    interface PsrLoggerBaseInterface
    {
    }
}

/**
 * A PSR-3 logger writing to the server's `app` logger through `Logger`:
 *
 *   $log = new PsrLogger(new Logger());      // e.g. Monolog-free Laravel/Symfony wiring
 *   $log->notice('cache warmed', ['keys' => 120]);
 *
 * The server has four levels: emergency, alert, critical and error go to
 * error; notice and info to info. The message is sent as it is (placeholders
 * such as {user} are left for the reader, and the values are in the context
 * fields). An unknown level throws Psr\Log\InvalidArgumentException (or
 * \InvalidArgumentException without psr/log), as PSR-3 asks.
 */
final class PsrLogger implements PsrLoggerBaseInterface
{
    /** PSR-3 level => the server's level. */
    public const LEVELS = [
        'emergency' => LogLevel::Error,
        'alert' => LogLevel::Error,
        'critical' => LogLevel::Error,
        'error' => LogLevel::Error,
        'warning' => LogLevel::Warning,
        'notice' => LogLevel::Info,
        'info' => LogLevel::Info,
        'debug' => LogLevel::Debug,
    ];

    public function __construct(private readonly Logger $logger = new Logger())
    {
    }

    /** @param array<array-key, mixed> $context */
    public function emergency($message, array $context = []): void
    {
        $this->logger->send(LogLevel::Error, self::text($message), $context);
    }

    /** @param array<array-key, mixed> $context */
    public function alert($message, array $context = []): void
    {
        $this->logger->send(LogLevel::Error, self::text($message), $context);
    }

    /** @param array<array-key, mixed> $context */
    public function critical($message, array $context = []): void
    {
        $this->logger->send(LogLevel::Error, self::text($message), $context);
    }

    /** @param array<array-key, mixed> $context */
    public function error($message, array $context = []): void
    {
        $this->logger->send(LogLevel::Error, self::text($message), $context);
    }

    /** @param array<array-key, mixed> $context */
    public function warning($message, array $context = []): void
    {
        $this->logger->send(LogLevel::Warning, self::text($message), $context);
    }

    /** @param array<array-key, mixed> $context */
    public function notice($message, array $context = []): void
    {
        $this->logger->send(LogLevel::Info, self::text($message), $context);
    }

    /** @param array<array-key, mixed> $context */
    public function info($message, array $context = []): void
    {
        $this->logger->send(LogLevel::Info, self::text($message), $context);
    }

    /** @param array<array-key, mixed> $context */
    public function debug($message, array $context = []): void
    {
        $this->logger->send(LogLevel::Debug, self::text($message), $context);
    }

    /**
     * @param mixed $level a PSR-3 level name (Psr\Log\LogLevel::*)
     * @param array<array-key, mixed> $context
     */
    public function log($level, $message, array $context = []): void
    {
        $name = \is_string($level) || $level instanceof \Stringable ? \strtolower((string)$level) : null;
        if ($name === null || !isset(self::LEVELS[$name])) {
            throw self::invalid(\sprintf(
                'unknown log level %s: expected one of %s',
                \is_scalar($level) ? \var_export($level, true) : \get_debug_type($level),
                \implode(', ', \array_keys(self::LEVELS)),
            ));
        }
        $this->logger->send(self::LEVELS[$name], self::text($message), $context);
    }

    private static function text(mixed $message): string
    {
        if (\is_string($message)) {
            return $message;
        }
        if ($message instanceof \Stringable || \is_scalar($message) || $message === null) {
            return (string)$message;
        }
        throw self::invalid(\sprintf('a log message is a string or Stringable, got %s', \get_debug_type($message)));
    }

    private static function invalid(string $text): \InvalidArgumentException
    {
        return \class_exists(\Psr\Log\InvalidArgumentException::class)
            ? new \Psr\Log\InvalidArgumentException($text)
            : new \InvalidArgumentException($text);
    }
}
