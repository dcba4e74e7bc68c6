<?php

declare(strict_types=1);

namespace Fastrr\Logger;

use Fastrr\Logger\DTO\V1\LogAttrs;
use Fastrr\Logger\DTO\V1\LogEntry;
use Fastrr\Logger\Exception\LoggerException;
use Fastrr\RPC\Codec\JsonCodec;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\Exception\RPCException;
use Fastrr\RPC\RPC;
use Fastrr\RPC\RPCInterface;

/**
 * Log lines in the server's log, the calls roadrunner-php/app-logger's
 * `RoadRunner\Logger\Logger` sends:
 *
 *   $logger = new Logger(RPC::create('tcp://127.0.0.1:6001'));   // or new Logger(): RR_RPC
 *   $logger->info('order placed', ['order' => 42]);              // app.InfoWithContext
 *   $logger->error('payment failed');                            // app.Error
 *   $logger->log("raw line\n");                                  // the server's stderr, as it is
 *
 * The server writes error/warning/info/debug through its logger named `app`
 * (level and outputs from `logs.channels.app`), the context as fields. A call
 * without context is a JSON call with the message; with context it is a
 * protobuf `LogEntry`. Context values that are not strings are JSON-encoded;
 * a value that cannot be encoded is left out (as the RoadRunner client does),
 * and a Throwable is written as "Class: message in file:line".
 */
final class Logger
{
    private readonly RPCInterface $json;
    private readonly RPCInterface $proto;

    public function __construct(?RPCInterface $rpc = null)
    {
        $rpc = ($rpc ?? RPC::fromEnvironment())->withServicePrefix('app');
        $this->json = $rpc->withCodec(new JsonCodec());
        $this->proto = $rpc->withCodec(new ProtobufCodec());
    }

    /** @param array<array-key, mixed> $context */
    public function error(string|\Stringable $message, array $context = []): void
    {
        $this->send(LogLevel::Error, $message, $context);
    }

    /** @param array<array-key, mixed> $context */
    public function warning(string|\Stringable $message, array $context = []): void
    {
        $this->send(LogLevel::Warning, $message, $context);
    }

    /** @param array<array-key, mixed> $context */
    public function info(string|\Stringable $message, array $context = []): void
    {
        $this->send(LogLevel::Info, $message, $context);
    }

    /** @param array<array-key, mixed> $context */
    public function debug(string|\Stringable $message, array $context = []): void
    {
        $this->send(LogLevel::Debug, $message, $context);
    }

    /**
     * The message on the server's stderr, past its logger (no level, time or
     * channel); with context, "message k1:v1,k2:v2".
     *
     * @param array<array-key, mixed> $context
     */
    public function log(string|\Stringable $message, array $context = []): void
    {
        $this->send(LogLevel::Log, $message, $context);
    }

    /**
     * @param array<array-key, mixed> $context
     * @throws LoggerException
     */
    public function send(LogLevel $level, string|\Stringable $message, array $context = []): void
    {
        try {
            if ($context === []) {
                $this->json->call($level->name, (string)$message);
                return;
            }
            $attrs = [];
            foreach ($context as $key => $value) {
                $text = self::prepareValue($value);
                if ($text !== null) {
                    $attrs[] = new LogAttrs(['key' => (string)$key, 'value' => $text]);
                }
            }
            $this->proto->call(
                $level->name . 'WithContext',
                new LogEntry(['message' => (string)$message, 'log_attrs' => $attrs]),
            );
        } catch (RPCException $e) {
            // Go's nested error text has tabs and newlines; RoadRunner's client flattens them too.
            throw new LoggerException(\str_replace(["\t", "\n"], ' ', $e->getMessage()), 0, $e);
        }
    }

    /** A context value as the string the server logs, or null when it has none. */
    public static function prepareValue(mixed $value): ?string
    {
        if (\is_string($value)) {
            return $value;
        }
        if ($value instanceof \Throwable) {
            return \sprintf('%s: %s in %s:%d', $value::class, $value->getMessage(), $value->getFile(), $value->getLine());
        }
        if ($value instanceof \Stringable) {
            return (string)$value;
        }
        try {
            return \json_encode($value, \JSON_THROW_ON_ERROR);
        } catch (\JsonException) {
            return null;
        }
    }
}
