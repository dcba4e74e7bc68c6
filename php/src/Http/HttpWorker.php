<?php

declare(strict_types=1);

namespace Fastrr\Http;

use Fastrr\Frame;
use Fastrr\Payload;
use Fastrr\StreamStoppedException;
use Fastrr\Worker;

/**
 * HTTP on top of a Worker: requests in as Request objects, responses out as
 * status + headers + body (a string, or a Generator that streams chunks).
 *
 * The request context may be RoadRunner's JSON object or its protobuf
 * `http.v1.Request`; the response context uses the same encoding as the
 * request it answers (JSON: frame flags 0x08, protobuf: 0x80).
 */
class HttpWorker
{
    /** Codec of the last request, used for its response. */
    private int $codec = Frame::CODEC_JSON;

    public function __construct(private readonly Worker $worker)
    {
    }

    public function getWorker(): Worker
    {
        return $this->worker;
    }

    /**
     * Waits for the next request; null when the server asks the worker to stop.
     *
     * @throws \JsonException|\UnexpectedValueException on a context we cannot decode
     */
    public function waitRequest(): ?Request
    {
        $payload = $this->worker->waitPayload();
        if ($payload === null) {
            return null;
        }
        $ctx = $this->decodeContext($payload->header);

        $query = [];
        $rawQuery = $ctx['rawQuery'] ?? '';
        if ($rawQuery !== '' && $rawQuery !== null) {
            \parse_str((string)$rawQuery, $query);
        }
        $cookies = (array)($ctx['cookies'] ?? []);
        if ($cookies !== []) {
            foreach ($cookies as $name => $value) {
                if (\is_array($value)) {
                    $cookies[$name] = \implode(',', $value);
                }
            }
        }

        return new Request(
            (string)($ctx['remoteAddr'] ?? ''),
            (string)($ctx['protocol'] ?? 'HTTP/1.1'),
            (string)($ctx['method'] ?? 'GET'),
            (string)($ctx['uri'] ?? ''),
            (array)($ctx['headers'] ?? []),
            $cookies,
            $query,
            $payload->body,
            (bool)($ctx['parsed'] ?? false),
            (array)($ctx['uploads'] ?? []),
            (array)($ctx['attributes'] ?? []),
        );
    }

    /**
     * Sends a response.
     *
     * @param string|\Generator<mixed, string, mixed, mixed> $body a Generator streams: each yielded
     *        string goes out as its own chunk and is flushed to the client
     * @param array<string, string|list<string>> $headers name => value or list of values
     * @param bool $endOfStream false to keep the exchange open, e.g. after a 103 Early Hints
     */
    public function respond(int $status, string|\Generator $body = '', array $headers = [], bool $endOfStream = true): void
    {
        if ($status < 200 && $status >= 100 && $body !== '') {
            throw new \InvalidArgumentException('an informational (1xx) response cannot have a body');
        }
        $context = $this->encodeContext($status, $headers);
        if ($body instanceof \Generator) {
            $this->respondStream($context, $body, $endOfStream);
            return;
        }
        $this->worker->respond(new Payload($body, $context, $endOfStream), $this->codec);
    }

    /**
     * @return array<string, mixed>
     */
    private function decodeContext(string $header): array
    {
        if ($header !== '' && $header[0] === '{') {
            $this->codec = Frame::CODEC_JSON;
            $ctx = \json_decode($header, true, 512, \JSON_THROW_ON_ERROR);
            if (!\is_array($ctx)) {
                throw new \UnexpectedValueException('request context is not a JSON object');
            }
            return $ctx;
        }
        // A protobuf message never starts with '{' (0x7B would be field 15, wire type 3).
        $this->codec = Frame::CODEC_PROTO;
        return ProtoCodec::decodeRequest($header);
    }

    /**
     * @param array<array-key, mixed> $headers
     */
    private function encodeContext(int $status, array $headers): string
    {
        // Values must be lists of strings on the wire; fix up anything else.
        foreach ($headers as $name => $values) {
            if (!\is_array($values)) {
                $headers[$name] = [(string)$values];
                continue;
            }
            if (!\array_is_list($values)) {
                $values = $headers[$name] = \array_values($values);
            }
            foreach ($values as $i => $v) {
                if (!\is_string($v)) {
                    $headers[$name][$i] = (string)$v;
                }
            }
        }

        if ($this->codec === Frame::CODEC_PROTO) {
            return ProtoCodec::encodeResponse($status, $headers);
        }
        return \json_encode(
            // An empty map must be {} and never [].
            ['status' => $status, 'headers' => $headers === [] || \array_is_list($headers) ? (object)$headers : $headers],
            \JSON_UNESCAPED_SLASHES | \JSON_UNESCAPED_UNICODE | \JSON_INVALID_UTF8_SUBSTITUTE | \JSON_THROW_ON_ERROR,
        );
    }

    /**
     * Streams a generator: one STREAM frame per yielded chunk (the same context
     * each time), then a final frame without STREAM carrying the generator's
     * string return value, if any.
     *
     * If the server cancels the stream (client gone), StreamStoppedException is
     * thrown into the generator and one empty final frame closes the exchange.
     * If the generator itself throws after chunks went out, the stream is closed
     * the same way before the exception propagates.
     */
    private function respondStream(string $context, \Generator $body, bool $endOfStream): void
    {
        $worker = $this->worker;
        $codec = $this->codec;
        $sent = false;
        try {
            while ($body->valid()) {
                if ($sent && $worker->isStreamStopped()) {
                    try {
                        $body->throw(new StreamStoppedException());
                    } catch (StreamStoppedException) {
                        // The generator did not catch it: the normal case.
                    } catch (\Throwable $e) {
                        Worker::log('fastrr: response generator failed while being stopped: ' . $e);
                    }
                    $worker->respond(new Payload('', $context, true), $codec);
                    return;
                }
                $chunk = $body->current();
                $worker->respond(new Payload((string)$chunk, $context, false), $codec);
                $sent = true;
                $body->next();
            }
            $return = $body->getReturn();
        } catch (\Throwable $e) {
            if ($sent) {
                $worker->respond(new Payload('', $context, true), $codec);
            }
            throw $e;
        }
        $worker->respond(new Payload(\is_string($return) ? $return : '', $context, $endOfStream), $codec);
    }
}
