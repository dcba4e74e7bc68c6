<?php

declare(strict_types=1);

namespace Fastrr\Http;

use Fastrr\Worker;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestFactoryInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\StreamFactoryInterface;
use Psr\Http\Message\StreamInterface;
use Psr\Http\Message\UploadedFileFactoryInterface;
use Psr\Http\Message\UploadedFileInterface;

/**
 * PSR-7 on top of HttpWorker: requests come in as ServerRequestInterface
 * (built with any PSR-17 factories), responses go out from ResponseInterface.
 */
class PSR7Worker
{
    /** Bodies up to this size go out in one frame; larger or unknown-size ones are streamed. */
    public const SINGLE_FRAME_LIMIT = 10 * 1024 * 1024;

    /** Chunk size when streaming a response body. */
    public const CHUNK_SIZE = 1024 * 1024;

    private readonly HttpWorker $http;

    /** @var array<string, mixed> $_SERVER as it was at boot: the base of every request's server params */
    private readonly array $baseServer;

    public function __construct(
        Worker $worker,
        private readonly ServerRequestFactoryInterface $requestFactory,
        private readonly StreamFactoryInterface $streamFactory,
        private readonly UploadedFileFactoryInterface $uploadsFactory,
    ) {
        $this->http = new HttpWorker($worker);
        // Forms as PHP's SAPIs get them (HttpServer.parses_form): the request a PSR-7 app
        // builds from php-fpm's globals is what this one gives (tests/differential).
        $worker->setHandshakeOption('raw_forms', true);
        $base = $_SERVER;
        // Per-request values that must not leak from the CLI environment.
        unset($base['HTTP_HOST'], $base['HTTPS'], $base['QUERY_STRING'], $base['CONTENT_TYPE'], $base['CONTENT_LENGTH']);
        $this->baseServer = $base;
    }

    public function getWorker(): Worker
    {
        return $this->http->getWorker();
    }

    /**
     * The HttpWorker underneath, e.g. to stream a Generator body.
     */
    public function getHttpWorker(): HttpWorker
    {
        return $this->http;
    }

    /**
     * Waits for the next request; null when the server asks the worker to stop.
     */
    public function waitRequest(): ?ServerRequestInterface
    {
        $request = $this->http->waitRequest();
        if ($request === null) {
            return null;
        }
        return $this->toServerRequest($request);
    }

    /**
     * Maps a fastrr Request to a PSR-7 ServerRequest.
     */
    public function toServerRequest(Request $request): ServerRequestInterface
    {
        $server = SuperglobalsWorker::serverVars($request, $this->baseServer, \microtime(true));
        $psr = $this->requestFactory->createServerRequest($request->method, $request->uri, $server);

        $version = match ($request->protocol) {
            'HTTP/2.0', 'HTTP/2' => '2',
            'HTTP/1.0' => '1.0',
            default => '1.1',
        };
        if ($version !== '1.1') {
            $psr = $psr->withProtocolVersion($version);
        }

        foreach ($request->headers as $name => $values) {
            try {
                $psr = $psr->withAddedHeader((string)$name, $values);
            } catch (\InvalidArgumentException) {
                // A name or value PSR-7 refuses (e.g. a space in the name): skip it
                // rather than fail the whole request.
            }
        }

        // The Cookie header by PHP's rules (a[b] nests, a.b becomes a_b), as php-fpm's $_COOKIE.
        $cookies = isset($server['HTTP_COOKIE']) ? PhpInput::cookies((string)$server['HTTP_COOKIE'])
            : $request->cookies;
        if ($cookies !== []) {
            $psr = $psr->withCookieParams($cookies);
        }
        if ($request->query !== []) {
            $psr = $psr->withQueryParams($request->query);
        }
        if ($request->parsed) {
            // A multipart POST the server parsed: its tree (not a body: PHP has none for it either),
            // top-level names as PHP registers them (a.b → a_b).
            $psr = $psr->withParsedBody(PhpInput::phpNames($request->getParsedBody() ?? []));
        } else {
            if ($request->body !== '') {
                $psr = $psr->withBody($this->streamFactory->createStream($request->body));
            }
            if ($request->method === 'POST' && PhpInput::isUrlencoded((string)$server['CONTENT_TYPE'])) {
                $psr = $psr->withParsedBody(PhpInput::postForm($request->body));
            }
        }
        if ($request->uploads !== []) {
            $psr = $psr->withUploadedFiles($this->wrapUploads(PhpInput::phpNames($request->uploads)));
        }
        foreach ($request->attributes as $name => $value) {
            $psr = $psr->withAttribute((string)$name, $value);
        }
        return $psr;
    }

    /**
     * Sends a PSR-7 response. A 1xx status (e.g. 103 Early Hints) is sent as an
     * informational response and the exchange stays open for the final one.
     */
    public function respond(ResponseInterface $response): void
    {
        $status = $response->getStatusCode();
        $headers = $response->getHeaders();
        if ($status >= 100 && $status < 200) {
            $this->http->respond($status, '', $headers, false);
            return;
        }

        $body = $response->getBody();
        $size = $body->getSize();
        if ($size !== null && $size <= self::SINGLE_FRAME_LIMIT) {
            if ($body->isSeekable()) {
                $body->rewind();
            }
            $this->http->respond($status, $body->getContents(), $headers);
            return;
        }
        $this->http->respond($status, self::chunks($body), $headers);
    }

    /**
     * @return \Generator<int, string, mixed, void>
     */
    private static function chunks(StreamInterface $body): \Generator
    {
        if ($body->isSeekable()) {
            $body->rewind();
        }
        while (!$body->eof()) {
            $chunk = $body->read(self::CHUNK_SIZE);
            if ($chunk === '') {
                break;
            }
            yield $chunk;
        }
    }

    /**
     * Turns the uploads tree (same shape as the form: `a[b][]`) into UploadedFileInterface leaves.
     *
     * @param array<array-key, mixed> $tree
     * @return array<array-key, mixed>
     */
    private function wrapUploads(array $tree): array
    {
        $out = [];
        foreach ($tree as $key => $node) {
            if (!\is_array($node)) {
                continue;
            }
            $out[$key] = self::isFile($node) ? $this->wrapFile($node) : $this->wrapUploads($node);
        }
        return $out;
    }

    /**
     * @param array<array-key, mixed> $node
     */
    private static function isFile(array $node): bool
    {
        return \array_key_exists('tmpName', $node) && \array_key_exists('error', $node) && !\is_array($node['error']);
    }

    /**
     * @param array<array-key, mixed> $file {name, mime, size, error, tmpName}
     */
    private function wrapFile(array $file): UploadedFileInterface
    {
        $error = (int)$file['error'];
        $stream = null;
        if ($error === \UPLOAD_ERR_OK) {
            try {
                $stream = $this->streamFactory->createStreamFromFile((string)$file['tmpName'], 'r');
            } catch (\RuntimeException | \InvalidArgumentException) {
                // The server reported success but the temp file is gone.
                $error = \UPLOAD_ERR_NO_FILE;
            }
        }
        return $this->uploadsFactory->createUploadedFile(
            $stream ?? $this->streamFactory->createStream(''),
            isset($file['size']) ? (int)$file['size'] : null,
            $error,
            // as PHP: the base name of what the client sent (fastrr's fullPath keeps C:\dir\ intact)
            isset($file['fullPath']) || isset($file['name'])
                ? Uploads::baseName((string)($file['fullPath'] ?? $file['name'])) : null,
            // PHP gives no type for a file that did not arrive
            $error === \UPLOAD_ERR_OK || $error === \UPLOAD_ERR_PARTIAL ? (string)($file['mime'] ?? '') : '',
        );
    }
}
