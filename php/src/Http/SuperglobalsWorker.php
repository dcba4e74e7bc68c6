<?php

declare(strict_types=1);

namespace Fastrr\Http;

use Fastrr\Relay\RelayException;
use Fastrr\Worker;

/**
 * Serves legacy PHP code that reads superglobals and prints its page:
 *
 *     $worker = Fastrr\Http\SuperglobalsWorker::create();
 *     $worker->serve(function (): void { require __DIR__ . '/page.php'; });
 *
 * Per request, serve() fills $_SERVER, $_GET, $_POST, $_COOKIE, $_FILES and
 * $_REQUEST, makes php://input return the body, calls the handler with output
 * buffered, and answers with the printed output as the body,
 * http_response_code() as the status and headers_list() as the headers.
 *
 * header()/setcookie() need the php-cgi SAPI (`php-cgi -q -d max_execution_time=0
 * worker.php`): php-cli discards them before any code could see them.
 *
 * exit()/die() in the handler ends the process: a shutdown function still sends
 * what was produced so far, and the server starts a new worker.
 */
final class SuperglobalsWorker
{
    /** $_SERVER keys that describe a request, never taken from the boot-time $_SERVER. */
    private const REQUEST_KEYS = [
        'REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SERVER_PROTOCOL', 'REQUEST_SCHEME', 'HTTPS',
        'SERVER_NAME', 'SERVER_PORT', 'SERVER_ADDR', 'REMOTE_ADDR', 'REMOTE_PORT', 'REMOTE_HOST', 'REMOTE_USER',
        'CONTENT_TYPE', 'CONTENT_LENGTH', 'REQUEST_TIME', 'REQUEST_TIME_FLOAT', 'SCRIPT_NAME', 'PHP_SELF',
        'PATH_INFO', 'PATH_TRANSLATED', 'ORIG_PATH_INFO', 'ORIG_SCRIPT_NAME', 'DOCUMENT_URI', 'AUTH_TYPE',
        'PHP_AUTH_USER', 'PHP_AUTH_PW', 'PHP_AUTH_DIGEST',
    ];

    /** The response for a Throwable that escaped the handler (details go to the log only). */
    public const ERROR_BODY = "500 Internal Server Error\n";

    private static bool $warned = false;

    private readonly HttpWorker $http;

    /** @var array<string, mixed> the process's $_SERVER without request-specific keys */
    private readonly array $bootServer;

    /** A request is being handled: the shutdown function must answer it. */
    private bool $inRequest = false;

    /** Output buffer level of the current request's capture buffer. */
    private int $level = 0;

    public function __construct(Worker|HttpWorker $worker)
    {
        $this->http = $worker instanceof HttpWorker ? $worker : new HttpWorker($worker);
        // Form bodies as PHP's SAPIs get them: urlencoded ones as sent (php://input keeps them,
        // parse_str() fills $_POST with PHP's own limits), multipart parsed for POST only.
        $this->http->getWorker()->setHandshakeOption('raw_forms', true);
        $this->bootServer = self::bootServer($_SERVER);
        self::checkSapi();
        // Open the log stream now (php://stderr when STDERR is not defined, as under
        // php-cgi), before php:// is taken over.
        Worker::log('', false);
        PhpStreamWrapper::install();
        \register_shutdown_function(function (): void {
            $this->onShutdown();
        });
    }

    /**
     * A worker on the relay named by RR_RELAY (default: pipes).
     */
    public static function create(): self
    {
        return new self(Worker::create());
    }

    public function getHttpWorker(): HttpWorker
    {
        return $this->http;
    }

    /**
     * Serves requests until the server stops the worker or closes the relay.
     * A request that cannot be decoded is answered with an error frame.
     *
     * @param callable(): void $handler prints the page (usually `require 'page.php'`)
     */
    public function serve(callable $handler): void
    {
        while (true) {
            try {
                $request = $this->http->waitRequest();
            } catch (RelayException) {
                break; // the server closed the relay: nothing left to serve
            } catch (\Throwable $e) {
                $this->http->getWorker()->error('cannot decode request: ' . $e->getMessage());
                continue;
            }
            if ($request === null) {
                break;
            }
            $this->handle($request, $handler);
        }
        $this->clearSuperglobals();
        PhpStreamWrapper::uninstall();
    }

    /**
     * Serves one request (the body of serve()'s loop).
     *
     * @param callable(): void $handler
     */
    public function handle(Request $request, callable $handler): void
    {
        $this->fillSuperglobals($request);
        $this->resetResponse();
        \error_clear_last();

        \ob_start();
        $this->level = \ob_get_level();
        $this->inRequest = true;
        $failure = null;
        try {
            $handler();
        } catch (\Throwable $e) {
            $failure = $e;
        }
        $this->inRequest = false;
        $body = $this->takeOutput();

        if ($failure !== null) {
            Worker::log('fastrr: the request handler failed (answered 500): ' . $failure);
            [$status, $headers] = [500, ['Content-Type' => ['text/plain; charset=utf-8']]];
            $body = self::ERROR_BODY;
        } else {
            [$status, $headers] = self::responseHeaders(\headers_list(), \http_response_code());
        }
        $this->resetResponse();
        $this->clearSuperglobals();
        $this->http->respond($status, $body, $headers);
    }

    /**
     * Sets $_SERVER, $_GET, $_POST, $_COOKIE, $_FILES, $_REQUEST and php://input for a request.
     */
    public function fillSuperglobals(Request $request, ?float $now = null): void
    {
        $server = self::serverVars($request, $this->bootServer, $now ?? \microtime(true));

        $get = [];
        $query = (string)($server['QUERY_STRING'] ?? '');
        if ($query !== '') {
            \parse_str($query, $get);
        } elseif (!\str_contains($request->uri, '?')) {
            $get = $request->query;
        }

        $post = [];
        $files = [];
        if ($request->parsed) { // multipart, POST: the server parsed it (PHP has no php://input for it)
            try {
                $post = PhpInput::phpNames($request->getParsedBody() ?? []);
            } catch (\JsonException $e) {
                Worker::log('fastrr: the server sent a parsed body that is not JSON: ' . $e->getMessage());
            }
            $files = PhpInput::phpNames(Uploads::toPhpFiles($request->uploads));
        } elseif ($request->method === 'POST' && PhpInput::isUrlencoded((string)($server['CONTENT_TYPE'] ?? ''))) {
            $post = PhpInput::postForm($request->body);
        }

        $_SERVER = $server;
        $_GET = $get;
        $_POST = $post;
        $_COOKIE = isset($server['HTTP_COOKIE']) ? PhpInput::cookies((string)$server['HTTP_COOKIE'])
            : PhpInput::cookieMap($request->cookies);
        $_FILES = $files;
        // request_order "GP": POST over GET, nested arrays merged key by key.
        $_REQUEST = \array_replace_recursive($get, $post);
        PhpStreamWrapper::setInput($request->parsed ? '' : $request->body);
    }

    /**
     * The request's $_SERVER.
     *
     * @param array<string, mixed> $boot the process's $_SERVER, request keys removed (see bootServer())
     * @return array<string, mixed>
     */
    public static function serverVars(Request $request, array $boot, float $now): array
    {
        $server = $boot;

        $scheme = 'http';
        $authority = '';
        $path = '/';
        $query = null;
        if (\preg_match('~^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(?:\?([^#]*))?~', $request->uri, $m)) {
            $scheme = \strtolower($m[1]);
            $authority = $m[2];
            $path = $m[3];
            $query = $m[4] ?? null;
        } elseif (\preg_match('~^([^?#]*)(?:\?([^#]*))?~', $request->uri, $m)) {
            $path = $m[1];
            $query = $m[2] ?? null;
        }
        if ($path === '' || $path[0] !== '/') {
            $path = '/' . $path;
        }
        $authority = (string)\preg_replace('~^.*@~', '', $authority); // no userinfo
        $host = $authority;
        $port = '';
        if (\preg_match('~^(\[[^\]]*\]|[^:]*)(?::(\d*))?$~', $authority, $hm)) {
            $host = $hm[1];
            $port = $hm[2] ?? '';
        }
        if ($port === '') {
            $port = $scheme === 'https' ? '443' : '80';
        }
        $hasQuery = $query !== null;
        $query ??= '';

        // nginx's snippets/fastcgi-php.conf: the path split after the first ".php", decoded.
        $decoded = \str_contains($path, '%') ? \rawurldecode($path) : $path;
        $scriptName = $decoded;
        $pathInfo = '';
        if (\str_contains($decoded, '.php/') && \preg_match('~^(.+?\.php)(/.*)$~s', $decoded, $pm)) {
            [$scriptName, $pathInfo] = [$pm[1], $pm[2]];
        }

        $server['REQUEST_METHOD'] = $request->method;
        $server['REQUEST_URI'] = $path . ($hasQuery ? '?' . $query : '');
        $server['QUERY_STRING'] = $query;
        $server['CONTENT_TYPE'] = '';   // nginx's stock fastcgi_params pass them even when empty
        $server['CONTENT_LENGTH'] = '';
        $server['DOCUMENT_URI'] = $scriptName;
        $server['PATH_INFO'] = $pathInfo;
        $server['REMOTE_USER'] = '';
        $server['SERVER_PROTOCOL'] = $request->protocol;
        $server['REQUEST_SCHEME'] = $scheme;
        if ($scheme === 'https') {
            $server['HTTPS'] = 'on';
        }
        $server['SERVER_NAME'] = $host;
        $server['SERVER_PORT'] = $port;
        $server['REMOTE_ADDR'] = $request->remoteAddr;
        $server['SCRIPT_NAME'] = $scriptName;
        $server['PHP_SELF'] = $scriptName . $pathInfo;
        if ($authority !== '') {
            $server['HTTP_HOST'] = $authority;
        }

        foreach ($request->headers as $name => $values) {
            if (\str_contains((string)$name, '_')) {
                // nginx drops such headers (underscores_in_headers off): `X_Forwarded_For` would
                // otherwise pass for `X-Forwarded-For`.
                continue;
            }
            $values = (array)$values;
            $key = \strtoupper(\str_replace('-', '_', (string)$name));
            if ($key === 'PROXY' || $values === []) {
                continue; // httpoxy: never expose a client-controlled HTTP_PROXY
            }
            // A repeated header: the last one, as php-fpm gets them from nginx 1.22 (one
            // FastCGI param each; php-fpm keeps the last). Cookie headers are joined with "; "
            // instead, as nginx does for HTTP/2 crumbs and since 1.23 for all: dropping
            // cookies is never what a client meant.
            $value = $key === 'COOKIE' ? \implode('; ', \array_map('strval', $values))
                : (string)$values[\array_key_last($values)];
            if ($key === 'CONTENT_TYPE' || $key === 'CONTENT_LENGTH') {
                $server[$key] = $value;
            }
            $server['HTTP_' . $key] = $value;
        }

        $auth = $server['HTTP_AUTHORIZATION'] ?? '';
        if (\is_string($auth) && \strncasecmp($auth, 'Basic ', 6) === 0) {
            $decoded = \base64_decode(\trim(\substr($auth, 6)), true);
            if (\is_string($decoded) && \str_contains($decoded, ':')) {
                [$user, $password] = \explode(':', $decoded, 2);
                $server['PHP_AUTH_USER'] = $user;
                if ($password !== '') { // php-fpm sets no PHP_AUTH_PW for an empty password
                    $server['PHP_AUTH_PW'] = $password;
                }
                $server['REMOTE_USER'] = $user; // nginx's $remote_user
            }
        }

        if (isset($server['HTTP_TRANSFER_ENCODING']) && !isset($server['HTTP_CONTENT_LENGTH']) && !$request->parsed) {
            $server['CONTENT_LENGTH'] = (string)\strlen($request->body); // a chunked body, as nginx passes it
        }

        $server['REQUEST_TIME_FLOAT'] = $now;
        $server['REQUEST_TIME'] = (int)$now;
        return $server;
    }

    /**
     * The process's $_SERVER without anything that describes a request.
     *
     * @param array<array-key, mixed> $server
     * @return array<string, mixed>
     */
    public static function bootServer(array $server): array
    {
        foreach ($server as $key => $_) {
            $key = (string)$key;
            if (\in_array($key, self::REQUEST_KEYS, true) || \str_starts_with($key, 'HTTP_') || \str_starts_with($key, 'REDIRECT_')) {
                unset($server[$key]);
            }
        }
        if (($server['SCRIPT_FILENAME'] ?? '') === '') {
            $first = \get_included_files()[0] ?? '';
            if ($first !== '') {
                $server['SCRIPT_FILENAME'] = $first;
            }
        }
        return $server;
    }

    /**
     * The status and the headers of the response from headers_list() lines:
     * grouped by name (case-insensitively, first spelling kept), repeated headers
     * kept in order (several Set-Cookie); a CGI `Status:` header sets the status;
     * without a Content-Type, PHP's default (default_mimetype, default_charset).
     *
     * @param list<string> $lines
     * @return array{int, array<string, list<string>>}
     */
    public static function responseHeaders(array $lines, int|bool $status): array
    {
        $status = \is_int($status) && $status >= 100 && $status <= 999 ? $status : 200;
        $headers = [];
        $spelling = [];
        foreach ($lines as $line) {
            $colon = \strpos($line, ':');
            if ($colon === false) {
                continue;
            }
            $name = \trim(\substr($line, 0, $colon));
            $value = \trim(\substr($line, $colon + 1));
            $key = \strtolower($name);
            if ($key === 'status') {
                if (\preg_match('/^(\d{3})\b/', $value, $m)) {
                    $status = (int)$m[1];
                }
                continue;
            }
            $spelling[$key] ??= $name;
            $headers[$spelling[$key]][] = $value;
        }
        if (!isset($spelling['content-type'])) {
            $mime = (string)\ini_get('default_mimetype');
            if ($mime !== '') {
                $charset = (string)\ini_get('default_charset');
                $headers['Content-Type'] = [
                    \str_starts_with(\strtolower($mime), 'text/') && $charset !== '' ? "$mime; charset=$charset" : $mime,
                ];
            }
        }
        return [$status, $headers];
    }

    /**
     * Everything the handler printed: nested buffers it left open are flushed
     * into the capture buffer, which is then closed.
     */
    private function takeOutput(): string
    {
        while (\ob_get_level() > $this->level) {
            if (!@\ob_end_flush()) {
                break;
            }
        }
        if (\ob_get_level() !== $this->level) {
            Worker::log('fastrr: the handler closed the output buffer of its request; output after that is lost');
            return '';
        }
        return (string)\ob_get_clean();
    }

    /**
     * Status 200, no headers. (`php-cgi -q` reports headers_sent() from the start but
     * still lets header_remove() work; php-cli keeps no headers anyway and warns when
     * something was printed before.)
     */
    private function resetResponse(): void
    {
        \http_response_code(200);
        if (\PHP_SAPI !== 'cli' || !\headers_sent()) {
            \header_remove();
        }
    }

    private function clearSuperglobals(): void
    {
        $_SERVER = $this->bootServer;
        $_GET = $_POST = $_COOKIE = $_FILES = $_REQUEST = [];
        PhpStreamWrapper::setInput('');
    }

    /**
     * The error that is ending the process, when a shutdown function runs because of one
     * (a fatal error, not exit()): error_get_last() if it is of a fatal kind, else null.
     *
     * @return array{type: int, message: string, file: string, line: int}|null
     */
    public static function fatalError(): ?array
    {
        $error = \error_get_last();
        $fatal = \E_ERROR | \E_PARSE | \E_CORE_ERROR | \E_COMPILE_ERROR | \E_USER_ERROR | \E_RECOVERABLE_ERROR;
        return $error !== null && ($error['type'] & $fatal) !== 0 ? $error : null;
    }

    /**
     * exit()/die() or a fatal error during a request: answer it before the process ends.
     */
    private function onShutdown(): void
    {
        if (!$this->inRequest) {
            return;
        }
        $this->inRequest = false;
        $body = $this->takeOutput();
        $error = self::fatalError();
        try {
            if ($error !== null) {
                Worker::log(\sprintf(
                    'fastrr: fatal error during a request (answered 500, the worker exits): %s in %s:%d',
                    $error['message'],
                    $error['file'],
                    $error['line'],
                ));
                $this->http->respond(500, self::ERROR_BODY, ['Content-Type' => ['text/plain; charset=utf-8']]);
                return;
            }
            [$status, $headers] = self::responseHeaders(\headers_list(), \http_response_code());
            $this->http->respond($status, $body, $headers);
        } catch (\Throwable $e) {
            Worker::log('fastrr: could not answer the request at exit: ' . $e->getMessage());
        }
    }

    /** One warning per process about what the SAPI cannot do; the time limit off under php-cgi. */
    private static function checkSapi(): void
    {
        if (self::$warned) {
            return;
        }
        self::$warned = true;
        if (\PHP_SAPI === 'cli') {
            Worker::log(
                'fastrr: SuperglobalsWorker runs under php-cli, which discards header() and setcookie(): '
                . 'responses get only the status and the printed body. Run the worker with php-cgi to keep them: '
                . 'server.command "php-cgi -q -d max_execution_time=0 ' . ($_SERVER['SCRIPT_FILENAME'] ?? 'worker.php') . '"',
            );
        } elseif (\PHP_SAPI === 'cgi-fcgi') {
            $limit = (int)\ini_get('max_execution_time');
            if ($limit !== 0) {
                \set_time_limit(0);
                Worker::log(\sprintf(
                    'fastrr: max_execution_time=%d would end this long-lived php-cgi worker; turned off '
                    . '(run php-cgi with -d max_execution_time=0 to silence this)',
                    $limit,
                ));
            }
        }
    }
}
