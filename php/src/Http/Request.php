<?php

declare(strict_types=1);

namespace Fastrr\Http;

/**
 * One HTTP request as the server describes it. Plain data, no behaviour beyond
 * a few accessors.
 *
 * - uri is absolute (`http://host/path?query`); the Host header itself is not in headers.
 * - headers: name => list of values, names as the server sent them (canonical case).
 * - body is the raw body, or the JSON form tree when $parsed is true.
 */
final class Request
{
    /**
     * @param array<string, list<string>> $headers
     * @param array<string, string> $cookies
     * @param array<array-key, mixed> $query
     * @param array<array-key, mixed> $uploads
     * @param array<string, mixed> $attributes
     */
    public function __construct(
        public readonly string $remoteAddr = '127.0.0.1',
        public readonly string $protocol = 'HTTP/1.1',
        public readonly string $method = 'GET',
        public readonly string $uri = 'http://localhost/',
        public readonly array $headers = [],
        public readonly array $cookies = [],
        public readonly array $query = [],
        public readonly string $body = '',
        public readonly bool $parsed = false,
        public readonly array $uploads = [],
        public readonly array $attributes = [],
    ) {
    }

    public function getRemoteAddr(): string
    {
        return $this->remoteAddr;
    }

    /**
     * The form data when the server parsed the body (urlencoded or multipart),
     * null otherwise.
     *
     * @return array<array-key, mixed>|null
     * @throws \JsonException when the server sent a parsed body that is not JSON
     */
    public function getParsedBody(): ?array
    {
        if (!$this->parsed) {
            return null;
        }
        if ($this->body === '') {
            // An empty form: older servers send an empty body instead of {}.
            return [];
        }
        $data = \json_decode($this->body, true, 512, \JSON_THROW_ON_ERROR);
        return \is_array($data) ? $data : null;
    }

    /**
     * The uploads in PHP's `$_FILES` layout (`name`, `full_path`, `type`,
     * `tmp_name`, `error`, `size`; bracketed field names transposed the way
     * PHP does it), e.g. for `$_FILES = $request->getFiles();`.
     *
     * @return array<array-key, array<string, mixed>>
     */
    public function getFiles(): array
    {
        return Uploads::toPhpFiles($this->uploads);
    }

    public function getAttribute(string $name, mixed $default = null): mixed
    {
        return $this->attributes[$name] ?? $default;
    }

    /**
     * The values of a header, looked up case-insensitively.
     *
     * @return list<string>
     */
    public function getHeader(string $name): array
    {
        if (isset($this->headers[$name])) {
            return $this->headers[$name];
        }
        foreach ($this->headers as $key => $values) {
            if (\strcasecmp((string)$key, $name) === 0) {
                return $values;
            }
        }
        return [];
    }

    public function getHeaderLine(string $name): string
    {
        return \implode(', ', $this->getHeader($name));
    }
}
