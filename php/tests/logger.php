<?php

/*
 * Tests of Fastrr\Logger (the app-logger client) and its PSR-3 adapter, loaded
 * by run.php (its harness, and fakeRpc() from jobs.php). Expected bytes were
 * produced by Google's Python protobuf runtime from the server's own
 * applogger.v1 messages (fastrr/applogger/rpc.py).
 */

declare(strict_types=1);

use Fastrr\Frame;
use Fastrr\Logger\DTO\V1\LogAttrs;
use Fastrr\Logger\DTO\V1\LogEntry;
use Fastrr\Logger\Exception\LoggerException;
use Fastrr\Logger\Logger;
use Fastrr\Logger\LogLevel;
use Fastrr\Logger\PsrLogger;
use Fastrr\RPC\Exception\ServiceException;

/** A Logger over a fake RPC that answers as the server does: JSON true, or an empty protobuf Response. */
function fakeLogger(?callable $handler = null): array
{
    [$rpc, $calls] = fakeRpc($handler ?? fn (string $method) => str_ends_with($method, 'WithContext') ? '' : 'true');
    return [new Logger($rpc), $calls];
}

test('logger proto: LogEntry bytes match the server\'s applogger.v1', function (): void {
    $entry = new LogEntry(['message' => 'order placed', 'log_attrs' => [
        new LogAttrs(['key' => 'order', 'value' => '42']),
        ['key' => 'user', 'value' => '{"id":7,"tags":["a\/b"]}'],
        new LogAttrs(['key' => 'ok', 'value' => 'true']),
    ]]);
    $hex = '0a0c6f7264657220706c61636564120b0a056f726465721202343212200a047573657212187b226964223a372c2274616773223a5b'
        . '22615c2f62225d7d120a0a026f6b120474727565';
    hexEq($hex, $entry->serializeToString());
    $back = LogEntry::decode(hex2bin($hex));
    eq('order placed', $back->getMessage());
    eq(['order' => '42', 'user' => '{"id":7,"tags":["a\/b"]}', 'ok' => 'true'],
        array_combine(array_map(fn (LogAttrs $a) => $a->getKey(), $back->getLogAttrs()),
            array_map(fn (LogAttrs $a) => $a->getValue(), $back->getLogAttrs())));
    hexEq('12090a013012047a65726f1200', (new LogEntry(['log_attrs' => [
        ['key' => '0', 'value' => 'zero'], new LogAttrs(),
    ]]))->serializeToString(), 'empty message left out, an empty attribute kept');
});

test('logger: a message without context is a JSON call named by its level', function (): void {
    [$logger, $calls] = fakeLogger();
    $logger->error('e1');
    $logger->warning('w1');
    $logger->info(new class () implements \Stringable {
        public function __toString(): string
        {
            return 'i1 from a Stringable';
        }
    });
    $logger->debug('d1 "quoted" é/');
    $logger->log("raw\n");
    eq([
        ['app.Error', '"e1"', Frame::CODEC_JSON],
        ['app.Warning', '"w1"', Frame::CODEC_JSON],
        ['app.Info', '"i1 from a Stringable"', Frame::CODEC_JSON],
        ['app.Debug', '"d1 \"quoted\" é/"', Frame::CODEC_JSON],
        ['app.Log', '"raw\n"', Frame::CODEC_JSON],
    ], $calls->getArrayCopy());
});

test('logger: context goes as a protobuf LogEntry to <Level>WithContext', function (): void {
    [$logger, $calls] = fakeLogger();
    $logger->info('order placed', ['order' => 42, 'user' => ['id' => 7, 'tags' => ['a/b']], 'ok' => true]);
    eq('app.InfoWithContext', $calls[0][0]);
    eq(Frame::CODEC_PROTO, $calls[0][2]);
    hexEq('0a0c6f7264657220706c61636564120b0a056f726465721202343212200a047573657212187b226964223a372c2274616773223a5b'
        . '22615c2f62225d7d120a0a026f6b120474727565', $calls[0][1], 'the bytes Python protobuf writes');
    foreach (['error' => 'Error', 'warning' => 'Warning', 'debug' => 'Debug', 'log' => 'Log'] as $fn => $level) {
        $logger->{$fn}('m', ['k' => 'v']);
        eq("app.{$level}WithContext", $calls[count($calls) - 1][0]);
    }
    $logger->send(LogLevel::Warning, 'direct');
    eq(['app.Warning', '"direct"'], array_slice($calls[count($calls) - 1], 0, 2));
});

test('logger: context values become strings; unencodable ones are left out', function (): void {
    [$logger, $calls] = fakeLogger();
    $stream = fopen('php://memory', 'rb');
    $e = new \RuntimeException('disk full');
    $logger->error('failed', [
        'null' => null, 'float' => 1.5, 'list' => [1, 2], 'str' => 'plain', 'nan' => NAN, 'res' => $stream,
        7 => 'int key', 'exception' => $e,
    ]);
    $attrs = [];
    foreach (LogEntry::decode($calls[0][1])->getLogAttrs() as $a) {
        $attrs[$a->getKey()] = $a->getValue();
    }
    eq([
        'null' => 'null', 'float' => '1.5', 'list' => '[1,2]', 'str' => 'plain', '7' => 'int key',
        'exception' => 'RuntimeException: disk full in ' . __FILE__ . ':' . $e->getLine(),
    ], $attrs);
    eq(null, Logger::prepareValue(NAN));
});

test('logger: a server error is a LoggerException with its text on one line', function (): void {
    [$logger] = fakeLogger(fn () => ['error' => "app.InfoWithContext: malformed\n\tapplogger.v1.LogEntry"]);
    $e = throws(LoggerException::class, fn () => $logger->info('x', ['a' => 'b']),
        'app.InfoWithContext: malformed  applogger.v1.LogEntry');
    ok($e->getPrevious() instanceof ServiceException, 'the RPC error is the cause');
    throws(LoggerException::class, fn () => $logger->debug('plain'), 'malformed');
});

test('psr-3: levels map onto the server\'s four; log() takes names; bad input throws', function (): void {
    [$logger, $calls] = fakeLogger();
    $psr = new PsrLogger($logger);
    if (interface_exists(\Psr\Log\LoggerInterface::class)) {
        ok($psr instanceof \Psr\Log\LoggerInterface, 'implements Psr\Log\LoggerInterface');
    }
    foreach (['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'] as $level) {
        $psr->{$level}("via $level");
        $psr->log(strtoupper($level), "log $level", ['user' => 'ann']);
    }
    $methods = array_map(fn (array $c) => $c[0], $calls->getArrayCopy());
    eq([
        'app.Error', 'app.ErrorWithContext', 'app.Error', 'app.ErrorWithContext', 'app.Error', 'app.ErrorWithContext',
        'app.Error', 'app.ErrorWithContext', 'app.Warning', 'app.WarningWithContext', 'app.Info', 'app.InfoWithContext',
        'app.Info', 'app.InfoWithContext', 'app.Debug', 'app.DebugWithContext',
    ], $methods);
    eq('"via notice"', $calls[10][1], 'the message as it is');
    $psr->info('user {user} logged in', ['user' => 'ann']);
    eq('user {user} logged in', LogEntry::decode($calls[count($calls) - 1][1])->getMessage(), 'placeholders kept');
    $psr->info(12);
    eq('"12"', $calls[count($calls) - 1][1]);
    $invalid = class_exists(\Psr\Log\InvalidArgumentException::class)
        ? \Psr\Log\InvalidArgumentException::class : \InvalidArgumentException::class;
    throws($invalid, fn () => $psr->log('loud', 'x'), "unknown log level 'loud': expected one of emergency, alert");
    throws($invalid, fn () => $psr->log(['x'], 'x'), 'unknown log level array');
    throws($invalid, fn () => $psr->info(['not', 'a', 'message']), 'a log message is a string or Stringable, got array');
    eq(count($methods) + 2, count($calls), 'nothing sent for bad input');
});

test('psr-3: the adapter fits LoggerInterface v1, v2 and v3 signatures', function (): void {
    $levels = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'];
    $shapes = [
        'v1' => ['$message', ''],
        'v2' => ['string|\Stringable $message', ''],
        'v3' => ['string|\Stringable $message', ': void'],
    ];
    foreach ($shapes as $version => [$param, $return]) {
        // The interface's method signatures only, declared before the library loads.
        $methods = '';
        foreach ($levels as $level) {
            $methods .= "public function $level($param, array \$context = [])$return; ";
        }
        $methods .= "public function log(\$level, $param, array \$context = [])$return;";
        $script = '<?php namespace Psr\Log { interface LoggerInterface { ' . $methods . ' } } '
            . 'namespace { require ' . var_export(dirname(__DIR__) . '/autoload.php', true) . '; '
            . '$l = new Fastrr\Logger\PsrLogger(new Fastrr\Logger\Logger(new Fastrr\RPC\RPC(new Fastrr\Relay\StreamRelay('
            . 'fopen("php://memory", "rb"), fopen("php://memory", "wb"))))); '
            . 'echo $l instanceof Psr\Log\LoggerInterface ? "implements" : "does not implement"; }';
        $file = tempnam(sys_get_temp_dir(), 'psr3') . '.php';
        file_put_contents($file, $script);
        $out = (string)shell_exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($file) . ' 2>&1');
        unlink($file);
        eq('implements', trim($out), "PSR-3 $version");
    }
});
