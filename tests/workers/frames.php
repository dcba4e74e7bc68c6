<?php

/*
 * A worker built from the bare frame layer (Frame + StreamRelay) that sends
 * reply sequences no well-behaved library would, routed by path:
 *
 *   /sleep?ms=N        200 "slept N" after N ms (an ordinary, slow request)
 *   /stream-error      a streamed 200 (head + one chunk, STREAM bit), then an
 *                      ERROR frame without STREAM (RoadRunner's $worker->error()
 *                      after chunks went out)
 *   /error-stream      an ERROR frame that carries the STREAM bit, then one
 *                      final (non-STREAM) empty frame that ends the exchange
 *   /bad-stream-head   a STREAM frame whose context is not valid JSON, then one
 *                      chunk (STREAM) and a final frame
 *   anything else      200 "ok"
 *
 * Server → worker STOP/PONG frames (no options) are ignored.
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Frame;
use Fastrr\Relay\RelayException;
use Fastrr\Relay\StreamRelay;

$relay = new StreamRelay();

$ok = '{"status":200,"headers":{"Content-Type":["text/plain"]}}';

$reply = static function (string $context, string $body, int $flags = Frame::CODEC_JSON, int $byte10 = 0) use ($relay): void {
    $relay->send(new Frame($context . $body, [strlen($context)], $flags, $byte10));
};

while (true) {
    try {
        $frame = $relay->waitFrame();
    } catch (RelayException) {
        exit(0);
    }

    if ($frame->flags & Frame::CONTROL) {
        $command = json_decode($frame->payload, true);
        if (!empty($command['pid'])) {
            $relay->send(new Frame('{"pid":' . getmypid() . '}', [], Frame::CONTROL));
            continue;
        }
        exit(0); // {"stop":true}
    }
    if ($frame->options === []) {
        continue; // a STOP or PONG for an exchange that is over
    }

    $request = json_decode(substr($frame->payload, 0, $frame->options[0]), true);
    $uri = (string)($request['uri'] ?? '/');
    $path = (string)parse_url($uri, PHP_URL_PATH);
    parse_str((string)parse_url($uri, PHP_URL_QUERY), $query);

    switch ($path) {
        case '/sleep':
            $ms = max(0, (int)($query['ms'] ?? 0));
            usleep($ms * 1000);
            $reply($ok, "slept $ms");
            break;

        case '/stream-error':
            $reply($ok, "chunk 0\n", Frame::CODEC_JSON, Frame::STREAM);
            usleep(50_000);
            $relay->send(new Frame('boom in the middle of a stream', [], Frame::ERROR));
            break;

        case '/error-stream':
            $relay->send(new Frame('boom with the stream bit', [], Frame::ERROR, Frame::STREAM));
            usleep(50_000);
            $reply($ok, '');
            break;

        case '/bad-stream-head':
            $reply('{this is not json', "chunk 0\n", Frame::CODEC_JSON, Frame::STREAM);
            usleep(50_000);
            $reply($ok, "chunk 1\n", Frame::CODEC_JSON, Frame::STREAM);
            usleep(50_000);
            $reply($ok, '');
            break;

        default:
            $reply($ok, 'ok');
    }
}
