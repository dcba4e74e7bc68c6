<?php

/*
 * Fastrr\Logger (and its PSR-3 adapter) against a real server, for
 * tests/applogger/test_app_php.py:
 *
 *   php app_logger_client.php <rpc address> <tag>
 *
 * Logs one line per level with and without context, tagged so the test can
 * find them, then a raw line with Logger::log(). Prints {"ok": true}, or
 * {"error": class, "message": text} and exits 1.
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Logger\Logger;
use Fastrr\Logger\PsrLogger;
use Fastrr\RPC\RPC;

[, $address, $tag] = $argv + [null, null, 'php'];
if ($address === null) {
    fwrite(STDERR, "usage: php app_logger_client.php <rpc address> <tag>\n");
    exit(2);
}

try {
    $logger = new Logger(RPC::create($address));
    foreach (['error', 'warning', 'info', 'debug'] as $level) {
        $logger->{$level}("$tag $level plain");
        $logger->{$level}("$tag $level context", ['level_name' => $level, 'n' => 42, 'user' => ['id' => 7]]);
    }
    $logger->log("$tag raw line");
    $logger->log("$tag raw context", ['a' => '1', 'b' => 2]);
    $psr = new PsrLogger($logger);
    $psr->critical("$tag psr critical", ['exception' => new \RuntimeException('boom')]);
    $psr->notice("$tag psr notice");
    echo json_encode(['ok' => true, 'psr3' => $psr instanceof \Psr\Log\LoggerInterface]), "\n";
} catch (\Throwable $e) {
    echo json_encode(['error' => $e::class, 'message' => $e->getMessage()]), "\n";
    exit(1);
}
