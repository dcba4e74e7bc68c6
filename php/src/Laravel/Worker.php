<?php

declare(strict_types=1);

namespace Fastrr\Laravel;

use Fastrr\Http\HttpWorker;
use Fastrr\Http\Request as FastrrRequest;
use Fastrr\Http\SuperglobalsWorker;
use Fastrr\Relay\RelayException;
use Fastrr\Worker as FastrrWorker;
use Illuminate\Contracts\Http\Kernel;
use Illuminate\Foundation\Application;
use Illuminate\Foundation\Bootstrap\RegisterProviders;
use Illuminate\Foundation\Bootstrap\SetRequestForConsole;
use Symfony\Component\HttpFoundation\BinaryFileResponse;
use Symfony\Component\HttpFoundation\Response;
use Symfony\Component\HttpFoundation\StreamedResponse;

/**
 * Serves a Laravel application from a long-lived fastrr worker:
 *
 *     (new Fastrr\Laravel\Worker('/path/to/app'))->serve();
 *
 * The application is created from bootstrap/app.php and bootstrapped once (environment, config,
 * providers registered and booted, deferred providers loaded, the usual services resolved).
 * Each request then runs in a Sandbox (a clone of that application with the shared services
 * reset), through the HTTP kernel: handle(), the response to the server, terminate().
 *
 * Errors: an exception inside the kernel is the application's own business (its exception
 * handler renders it, usually a 500) and the worker goes on. A Throwable outside it (terminate,
 * sending) answers 500 if nothing was sent yet and the worker goes on too. exit() or a fatal
 * error ends the process: a shutdown function answers the request first (what was printed,
 * or a 500 for a fatal error) and the server starts a new worker.
 */
final class Worker
{
    /** Streamed output is sent at the latest every CHUNK_SIZE bytes, and at every ob_flush(). */
    public const CHUNK_SIZE = 1024 * 1024;

    /** File responses up to this size are read into one frame (as PSR7Worker does for bodies). */
    public const SINGLE_FRAME_LIMIT = 10 * 1024 * 1024;

    /** Services resolved at boot so that requests find them built (and share them). */
    public const WARM = [
        'auth', 'cache', 'cache.store', 'config', 'cookie', 'db', 'db.factory', 'db.transactions',
        'encrypter', 'files', 'hash', 'log', 'router', 'routes', 'session', 'session.store',
        'translator', 'url', 'view',
    ];

    public const ERROR_BODY = "500 Internal Server Error\n";

    private readonly HttpWorker $http;

    private readonly Application $app;

    private readonly Sandbox $sandbox;

    private readonly RequestFactory $requests;

    /** A request is being handled: the shutdown function must answer it. */
    private bool $inRequest = false;

    /** Output-buffer level of the current request's capture buffer. */
    private int $level = 0;

    /**
     * @param string $basePath the application's root (where bootstrap/app.php is)
     * @param list<string> $flush bindings to forget after every request, on top of the scoped ones
     */
    public function __construct(string $basePath, ?HttpWorker $http = null, array $flush = [])
    {
        $this->http = $http ?? new HttpWorker(FastrrWorker::create());
        // Forms as PHP's SAPIs get them (urlencoded bodies raw, multipart parsed for POST only),
        // so that the request is the one php-fpm gives Laravel.
        $this->http->getWorker()->setHandshakeOption('raw_forms', true);
        // Before the application registers its own (HandleExceptions): shutdown functions run in
        // order, and the request must be answered before anything else prints.
        \register_shutdown_function(function (): void {
            $this->onShutdown();
        });
        $this->app = self::boot($basePath);
        $this->sandbox = new Sandbox($this->app, $flush);
        $this->requests = new RequestFactory($this->app->publicPath());
    }

    /**
     * The base path from FASTRR_LARAVEL_BASE_PATH, else APP_BASE_PATH, else the working directory.
     */
    public static function basePathFromEnvironment(): string
    {
        foreach (['FASTRR_LARAVEL_BASE_PATH', 'APP_BASE_PATH'] as $name) {
            $value = \getenv($name);
            if (\is_string($value) && $value !== '') {
                return \rtrim($value, '/');
            }
        }
        return (string)\getcwd();
    }

    /**
     * Creates and bootstraps the application, as the HTTP kernel would on its first request.
     */
    public static function boot(string $basePath): Application
    {
        $file = $basePath . '/bootstrap/app.php';
        if (!\is_file($file)) {
            throw new \RuntimeException("no Laravel application in $basePath: bootstrap/app.php not found");
        }
        // This process serves HTTP: providers must not register their console side (and
        // runningInConsole() must answer as under php-fpm), unless the app says otherwise.
        if (\getenv('APP_RUNNING_IN_CONSOLE') === false) {
            \putenv('APP_RUNNING_IN_CONSOLE=false');
            $_ENV['APP_RUNNING_IN_CONSOLE'] = $_SERVER['APP_RUNNING_IN_CONSOLE'] = 'false';
        }
        $app = require $file;
        if (!$app instanceof Application) {
            throw new \RuntimeException("$file did not return an Illuminate\\Foundation\\Application");
        }
        $kernel = $app->make(Kernel::class);
        // The kernel's own bootstrappers, plus a request (from app.url) before the providers
        // register, for providers that look at the request while booting.
        $bootstrappers = (fn (): array => $this->bootstrappers())->call($kernel);
        $at = \array_search(RegisterProviders::class, $bootstrappers, true);
        if ($at !== false) {
            \array_splice($bootstrappers, (int)$at, 0, [SetRequestForConsole::class]);
        }
        $app->bootstrapWith($bootstrappers);
        $app->loadDeferredProviders();
        foreach (self::WARM as $service) {
            if ($app->bound($service)) {
                $app->make($service);
            }
        }
        return $app;
    }

    public function getApplication(): Application
    {
        return $this->app;
    }

    /**
     * Serves requests until the server stops the worker or closes the relay.
     */
    public function serve(): void
    {
        while (true) {
            try {
                $request = $this->http->waitRequest();
            } catch (RelayException) {
                break;
            } catch (\Throwable $e) {
                $this->http->getWorker()->error('cannot decode request: ' . $e->getMessage());
                continue;
            }
            if ($request === null) {
                break;
            }
            $this->handle($request);
        }
    }

    /**
     * One request: sandbox, kernel, response, terminate, reset.
     */
    public function handle(FastrrRequest $request): void
    {
        $laravelRequest = null;
        $sandbox = null;
        $answered = false;
        $this->inRequest = true;
        \ob_start();
        $this->level = \ob_get_level();
        try {
            $laravelRequest = $this->requests->create($request);
            $sandbox = $this->sandbox->open($laravelRequest);
            $kernel = $sandbox->make(Kernel::class);
            $response = $kernel->handle($laravelRequest);
            $printed = $this->takeOutput();
            $this->inRequest = false;
            $this->send($response, $printed);
            $answered = true;
            $kernel->terminate($laravelRequest, $response);
        } catch (\Throwable $e) {
            $this->takeOutput();
            $this->inRequest = false;
            FastrrWorker::log('fastrr: Laravel request failed outside the kernel: ' . $e);
            if (!$answered) {
                $this->http->respond(500, self::ERROR_BODY, ['Content-Type' => ['text/plain; charset=utf-8']]);
            }
        } finally {
            $this->inRequest = false;
            if ($sandbox !== null) {
                try {
                    $this->sandbox->close($sandbox, $laravelRequest);
                } catch (\Throwable $e) {
                    // The next request gets a fresh clone anyway; this one must not end the worker.
                    FastrrWorker::log('fastrr: resetting the Laravel application after a request failed: ' . $e);
                    Sandbox::makeCurrent($this->app);
                }
            }
            unset($sandbox, $laravelRequest, $response, $kernel);
        }
    }

    /**
     * Sends a response: status, headers with one Set-Cookie per cookie, then the body. Output the
     * application printed during the request comes first, as under php-fpm. Streamed and file
     * responses go out chunk by chunk as their sendContent() prints them.
     */
    private function send(Response $response, string $printed): void
    {
        $status = $response->getStatusCode();
        $headers = $response->headers->allPreserveCaseWithoutCookies();
        // As PHP's SAPIs send it: Content-Type first, and PHP's default (default_mimetype,
        // default_charset) when the response has none (Laravel's rendered exceptions, for one).
        $type = null;
        foreach ($headers as $name => $values) {
            if (\strcasecmp((string)$name, 'Content-Type') === 0) {
                $type = [$name => $values];
                unset($headers[$name]);
                break;
            }
        }
        $headers = ($type ?? SuperglobalsWorker::responseHeaders([], $status)[1]) + $headers;
        foreach ($response->headers->getCookies() as $cookie) {
            $headers['Set-Cookie'][] = (string)$cookie;
        }
        if ($response instanceof StreamedResponse) {
            $this->http->respond($status, self::streamed($response, $printed), $headers);
            return;
        }
        if ($response instanceof BinaryFileResponse) {
            // A file (or the Range of it that prepare() chose) up to SINGLE_FRAME_LIMIT goes out in
            // one frame, with its length; a larger one is streamed.
            $length = $response->headers->get('Content-Length');
            if ($length !== null && \ctype_digit($length) && (int)$length <= self::SINGLE_FRAME_LIMIT) {
                \ob_start();
                try {
                    $response->sendContent();
                } finally {
                    $content = (string)\ob_get_clean();
                }
                $this->http->respond($status, $printed . $content, $headers);
                return;
            }
            $this->http->respond($status, self::streamed($response, $printed), $headers);
            return;
        }
        $this->http->respond($status, $printed . (string)$response->getContent(), $headers);
    }

    /**
     * The output of $response->sendContent() as a generator of chunks: sendContent() runs in a
     * Fiber under an output buffer whose handler hands each flushed piece (ob_flush(), or every
     * CHUNK_SIZE bytes; BinaryFileResponse copies the file, Range included, to php://output) to
     * the generator, which sends it before the Fiber goes on. If the client goes away, the rest
     * of the output is discarded and the callback runs to its end: it is not interrupted.
     *
     * @return \Generator<int, string, mixed, void>
     */
    private static function streamed(Response $response, string $printed): \Generator
    {
        $discard = false;
        $fiber = new \Fiber(static function () use ($response, &$discard): void {
            \ob_start(static function (string $buffer, int $phase) use (&$discard): string {
                if ($buffer !== '' && !$discard && ($phase & \PHP_OUTPUT_HANDLER_CLEAN) === 0) {
                    \Fiber::suspend($buffer);
                }
                return '';
            }, self::CHUNK_SIZE);
            $level = \ob_get_level();
            try {
                $response->sendContent();
            } finally {
                while (\ob_get_level() > $level) {
                    \ob_end_flush();
                }
                if (\ob_get_level() === $level) {
                    \ob_end_flush();
                }
            }
        });
        if ($printed !== '') {
            yield $printed;
        }
        try {
            $chunk = $fiber->start();
            while (!$fiber->isTerminated()) {
                yield (string)$chunk;
                $chunk = $fiber->resume();
            }
        } catch (\Fastrr\StreamStoppedException $e) {
            $discard = true;
            while (!$fiber->isTerminated()) {
                $fiber->resume();
            }
            throw $e;
        }
    }

    /**
     * What the request printed outside the response (echo, dump()); nested buffers it left open
     * are flushed into the capture buffer first.
     */
    private function takeOutput(): string
    {
        while (\ob_get_level() > $this->level) {
            if (!@\ob_end_flush()) {
                break;
            }
        }
        if (\ob_get_level() !== $this->level) {
            return '';
        }
        return (string)\ob_get_clean();
    }

    /**
     * exit()/die() or a fatal error during a request: answer it before the process ends (the
     * server then starts a new worker). After exit, the answer is what was printed, status 200,
     * as php-fpm sends it when Laravel never got to send its response; after a fatal error, a plain
     * 500 (Laravel's shutdown handler still reports the error to its log afterwards).
     */
    private function onShutdown(): void
    {
        if (!$this->inRequest) {
            return;
        }
        $this->inRequest = false;
        $body = $this->takeOutput();
        $error = SuperglobalsWorker::fatalError();
        try {
            if ($error !== null) {
                FastrrWorker::log(\sprintf(
                    'fastrr: fatal error during a Laravel request (answered 500, the worker exits): %s in %s:%d',
                    $error['message'],
                    $error['file'],
                    $error['line'],
                ));
                $this->http->respond(500, self::ERROR_BODY, ['Content-Type' => ['text/plain; charset=utf-8']]);
                return;
            }
            FastrrWorker::log('fastrr: exit() during a Laravel request: the worker ends and is replaced');
            $this->http->respond(200, $body, ['Content-Type' => ['text/html; charset=UTF-8']]);
        } catch (\Throwable $e) {
            FastrrWorker::log('fastrr: could not answer the request at exit: ' . $e->getMessage());
        } finally {
            self::closePipes();
            // What the application's own shutdown handler prints next (its error page) has no
            // request to go to; after "memory exhausted" PHP has dropped every output buffer, so
            // without this it would reach the protocol's STDOUT.
            \ob_start(static fn (string $buffer): string => '');
        }
    }

    /**
     * Tearing down a booted Laravel application takes a while; until the process is gone the
     * server may hand it the next request, which would then fail (502). In pipes mode, closing
     * the pipes tells the server at once that this worker is finished.
     */
    private static function closePipes(): void
    {
        $relay = \getenv('RR_RELAY');
        if (($relay === false || $relay === '' || \str_starts_with($relay, 'pipes')) && \defined('STDOUT')) {
            @\fclose(\STDOUT);
            @\fclose(\STDIN);
        }
    }
}
