<?php

/*
 * A worker built from the bare frame layer only (Frame + StreamRelay, no Worker,
 * no HttpWorker): answers every request with status 200 and, as the body, the
 * request context bytes exactly as received. Lets tests assert on the context
 * the server encodes.
 *
 * JSON contexts get a JSON response context (flags 0x08, Content-Type
 * application/json); protobuf contexts (request flags 0x80) get a protobuf
 * http.v1.Response {status: 200} (flags 0x80, no headers).
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Frame;
use Fastrr\Relay\RelayException;
use Fastrr\Relay\StreamRelay;

$relay = new StreamRelay();

$jsonContext = '{"status":200,"headers":{"Content-Type":["application/json"]}}';
// http.v1.Response: field 1 (status, varint) = 200.
$protoContext = "\x08\xC8\x01";

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
        continue; // a stray PONG/STOP: nothing to answer
    }

    $received = substr($frame->payload, 0, $frame->options[0]);
    if ($frame->flags & Frame::CODEC_PROTO) {
        $relay->send(new Frame($protoContext . $received, [strlen($protoContext)], Frame::CODEC_PROTO));
    } else {
        $relay->send(new Frame($jsonContext . $received, [strlen($jsonContext)], Frame::CODEC_JSON));
    }
}
