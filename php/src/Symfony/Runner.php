<?php

declare(strict_types=1);

namespace Fastrr\Symfony;

use Fastrr\Http\HttpWorker;
use Fastrr\Http\PSR7Worker;
use Fastrr\Http\Request as FastrrRequest;
use Fastrr\Http\SuperglobalsWorker;
use Fastrr\Relay\RelayException;
use Fastrr\StreamStoppedException;
use Fastrr\Worker;
use Symfony\Component\EventDispatcher\EventDispatcherInterface;
use Symfony\Component\HttpFoundation\BinaryFileResponse;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\Response;
use Symfony\Component\HttpFoundation\StreamedResponse;
use Symfony\Component\HttpKernel\Event\ResponseEvent;
use Symfony\Component\HttpKernel\EventListener\StreamedResponseListener;
use Symfony\Component\HttpKernel\HttpKernel;
use Symfony\Component\HttpKernel\HttpKernelInterface;
use Symfony\Component\HttpKernel\Kernel;
use Symfony\Component\HttpKernel\KernelEvents;
use Symfony\Component\HttpKernel\KernelInterface;
use Symfony\Component\HttpKernel\TerminableInterface;
use Symfony\Component\Runtime\RunnerInterface;

/**
 * Serves a Symfony HTTP kernel in a fastrr worker: boot once, then per request
 *
 *   fastrr request → HttpFoundation Request (RequestFactory) → $kernel->handle() → the response
 *   sent (a plain body in one frame; StreamedResponse and large BinaryFileResponse bodies as
 *   stream frames) → $kernel->terminate() → services reset.
 *
 * The reset is the kernel's own: Kernel::handle() marks the container for a reset and the next
 * Kernel::boot() with no request in flight calls `services_resetter` (every service tagged
 * kernel.reset: the session listener, loggers, caches, the app's ResetInterface services). Symfony
 * would do that lazily when the *next* request arrives; this runner calls boot() right after
 * terminate(), so the request's state is dropped before the worker waits again and the next
 * request does not pay for it (baldinof/roadrunner-bundle resets after each handled request too).
 * A kernel that is not a Kernel but has a container gets `services_resetter->reset()` directly.
 *
 * Failures: an exception escaping handle() (Symfony 5.4 catches \Exception only, not \Error) is
 * rendered by the kernel as php-fpm renders it — HttpKernel::terminateWithException(), the path
 * Symfony's exception handler takes under php-fpm — and the worker goes on; when the kernel cannot
 * render it either, a plain 500. exit()/die() ends the process: a shutdown function answers the
 * request with what the app printed (PHP's default 200, or 500 after a fatal error) and the server
 * replaces the worker.
 */
final class Runner implements RunnerInterface
{
    /** Bodies of BinaryFileResponse up to this size go out in one frame, as PSR7Worker does. */
    private const SINGLE_FRAME_LIMIT = PSR7Worker::SINGLE_FRAME_LIMIT;

    /** The plain answer when nothing better can be rendered (details go to the log only). */
    public const ERROR_BODY = "500 Internal Server Error\n";

    private readonly RequestFactory $factory;

    private readonly int $chunkSize;

    /** @var list<string>|null trusted proxies naming REMOTE_ADDR, re-declared per request */
    private ?array $trustedProxies = null;

    /** A request is being handled and has not been answered yet. */
    private bool $inFlight = false;

    /** Stream frames went out for the current response: only the server can close it now. */
    private bool $streaming = false;

    /** Output-buffer level the current request's capture buffer sits at. */
    private int $level = 0;

    /**
     * @param array<string, mixed> $options the runtime's options
     */
    public function __construct(
        private readonly HttpKernelInterface $kernel,
        private readonly HttpWorker $http,
        array $options = [],
    ) {
        $scriptName = $options['fastrr_script_name'] ?? null;
        $this->factory = new RequestFactory($_SERVER, \is_string($scriptName) ? $scriptName : null);
        $this->chunkSize = \max(1, (int)($options['fastrr_chunk_size'] ?? 65536));
        // Forms as PHP's SAPIs get them: urlencoded bodies as sent (PhpInput parses them by PHP's
        // rules), multipart ones parsed for POST only.
        $http->getWorker()->setHandshakeOption('raw_forms', true);
    }

    public function run(): int
    {
        if ($this->kernel instanceof KernelInterface) {
            // Boot before the first request: a broken app fails at start (the server's boot-loop
            // detection sees it), and the first request costs what the others cost.
            $this->kernel->boot();
            $this->readTrustedProxies($this->kernel);
            $this->removeStreamedResponseListener($this->kernel);
        }
        \register_shutdown_function(function (): void {
            $this->onShutdown();
        });

        while (true) {
            try {
                $raw = $this->http->waitRequest();
            } catch (RelayException) {
                break; // the server closed the relay
            } catch (\Throwable $e) {
                $this->http->getWorker()->error('cannot decode request: ' . $e->getMessage());
                continue;
            }
            if ($raw === null) {
                break; // the server asked this worker to stop
            }
            if (!$this->serve($raw)) {
                break;
            }
        }
        $this->resetServices();
        return 0;
    }

    /**
     * Serves one request.
     *
     * @return bool false when the worker must not take another request (the reset failed)
     */
    public function serve(FastrrRequest $raw): bool
    {
        $this->inFlight = true;
        $this->streaming = false;
        \ob_start();
        $this->level = \ob_get_level();

        $request = null;
        $response = null;
        $terminated = false;
        try {
            $request = $this->factory->create($raw);
            $this->declareTrustedProxies((string)$request->server->get('REMOTE_ADDR', ''));
            $response = $this->kernel->handle($request);
        } catch (\Throwable $e) {
            Worker::log('fastrr: the kernel failed to handle ' . $raw->method . ' ' . $raw->uri . ': ' . $e);
            $response = $request === null ? null : $this->renderThrowable($e, $request);
            $terminated = $response !== null; // terminateWithException() ran kernel.terminate
        }
        $this->closeCapture();

        try {
            if ($response === null) {
                $this->http->respond(500, self::ERROR_BODY, ['Content-Type' => ['text/plain; charset=utf-8']]);
            } else {
                $this->send($response);
            }
        } catch (RelayException $e) {
            throw $e;
        } catch (\Throwable $e) {
            // A streamed body that failed half-way (HttpWorker has closed the stream), or a body
            // that could not be produced at all.
            Worker::log('fastrr: the response could not be sent: ' . $e);
            if (!$this->streaming) {
                $this->http->respond(500, self::ERROR_BODY, ['Content-Type' => ['text/plain; charset=utf-8']]);
            }
        } finally {
            $this->inFlight = false;
            $this->streaming = false;
        }

        if (!$terminated && $request !== null && $response !== null && $this->kernel instanceof TerminableInterface) {
            try {
                \ob_start();
                $this->level = \ob_get_level();
                $this->kernel->terminate($request, $response);
            } catch (\Throwable $e) {
                Worker::log('fastrr: kernel.terminate failed: ' . $e);
            } finally {
                $this->closeCapture();
            }
        }
        return $this->resetServices();
    }

    /**
     * Sends a Response: status, headers (Set-Cookie lines from the cookie jar) and the body.
     */
    private function send(Response $response): void
    {
        $headers = $response->headers->allPreserveCaseWithoutCookies();
        $cookies = $response->headers->getCookies();
        if ($cookies !== []) {
            $headers['Set-Cookie'] = \array_map('strval', $cookies);
        }
        $status = $response->getStatusCode();

        $length = (int)$response->headers->get('Content-Length', '-1');
        if ($response instanceof StreamedResponse
            || ($response instanceof BinaryFileResponse && $length > self::SINGLE_FRAME_LIMIT)
        ) {
            $this->http->respond($status, $this->stream($response), $headers);
            return;
        }
        if ($response instanceof BinaryFileResponse) {
            $this->http->respond($status, $this->captureContent($response), $headers);
            return;
        }
        $content = $response->getContent();
        $this->http->respond($status, \is_string($content) ? $content : '', $headers);
    }

    /**
     * What sendContent() prints, in one string.
     */
    private function captureContent(Response $response): string
    {
        \ob_start();
        $level = \ob_get_level();
        try {
            $response->sendContent();
        } finally {
            $out = '';
            while (\ob_get_level() >= $level) {
                $out = (string)\ob_get_clean() . $out;
            }
        }
        return $out;
    }

    /**
     * What sendContent() prints, as a generator of chunks for HttpWorker's stream frames.
     *
     * sendContent() pushes output (echo, php://output) where HttpWorker pulls a generator, so it
     * runs in a Fiber under an output buffer whose handler suspends the fiber with every chunk:
     * when the buffer reaches the chunk size, and at every ob_flush() the callback makes. flush()
     * alone flushes no PHP buffer (as under php-fpm with output_buffering on), so a callback that
     * wants its bytes out at once calls ob_flush() then flush(). If the client goes away, the
     * callback still runs to its end, its output dropped (connection_aborted() stays 0 in php-cli).
     *
     * @return \Generator<int, string, mixed, string>
     */
    private function stream(Response $response): \Generator
    {
        $this->streaming = true;
        $chunkSize = $this->chunkSize;
        $stopped = false;
        $fiber = new \Fiber(static function () use ($response, $chunkSize, &$stopped): string {
            $self = \Fiber::getCurrent();
            \ob_start(static function (string $buffer, int $phase) use ($self, &$stopped): string {
                if ($buffer === '' || $stopped || ($phase & \PHP_OUTPUT_HANDLER_CLEAN) !== 0) {
                    return '';
                }
                if (\Fiber::getCurrent() === $self) {
                    \Fiber::suspend($buffer);
                    return '';
                }
                return $buffer; // printed outside the fiber while it waits: the worker's log
            }, $chunkSize);
            $level = \ob_get_level();
            try {
                $response->sendContent();
            } finally {
                $rest = '';
                while (\ob_get_level() >= $level) {
                    $rest = (string)\ob_get_clean() . $rest;
                }
            }
            return $stopped ? '' : $rest;
        });

        $chunk = $fiber->start();
        while (!$fiber->isTerminated()) {
            try {
                yield (string)$chunk;
            } catch (StreamStoppedException $e) {
                // The client is gone. Nothing is thrown into the callback: an exception leaving an
                // output handler would disable it and let the bytes through to the frame stream.
                // The callback runs to its end with its output dropped.
                $stopped = true;
                while (!$fiber->isTerminated()) {
                    $fiber->resume();
                }
                throw $e;
            }
            $chunk = $fiber->resume();
        }
        return (string)$fiber->getReturn();
    }

    /**
     * The kernel's own error response for a Throwable that escaped handle(): the response
     * HttpKernel::terminateWithException() renders (kernel.exception, the ErrorController,
     * kernel.response), taken at kernel.response instead of being printed.
     */
    private function renderThrowable(\Throwable $e, Request $request): ?Response
    {
        if (!$this->kernel instanceof KernelInterface) {
            return null;
        }
        try {
            $container = $this->kernel->getContainer();
            $httpKernel = $container->get('http_kernel');
            $dispatcher = $container->get('event_dispatcher');
        } catch (\Throwable) {
            return null;
        }
        if (!$httpKernel instanceof HttpKernel || !$dispatcher instanceof EventDispatcherInterface) {
            return null;
        }
        $rendered = null;
        $listener = static function (ResponseEvent $event) use (&$rendered, $request): void {
            if ($event->getRequest() === $request && $event->isMainRequest()) {
                $rendered = $event->getResponse();
            }
        };
        $dispatcher->addListener(KernelEvents::RESPONSE, $listener, -4096);
        \ob_start(); // terminateWithException() prints the response: we send it ourselves
        $level = \ob_get_level();
        try {
            $httpKernel->terminateWithException($e, $request);
        } catch (\Throwable $again) {
            Worker::log('fastrr: the kernel could not render the error: ' . $again->getMessage());
            $rendered = null;
        } finally {
            while (\ob_get_level() >= $level) {
                \ob_end_clean();
            }
            $dispatcher->removeListener(KernelEvents::RESPONSE, $listener);
        }
        return $rendered;
    }

    /**
     * Drops the current request's capture buffer (and any the app left open above it); what the
     * app printed outside a response goes to the log, never into the frame stream.
     */
    private function closeCapture(): void
    {
        $out = '';
        while (\ob_get_level() >= $this->level && $this->level > 0) {
            $out = (string)\ob_get_clean() . $out;
        }
        if ($out !== '') {
            Worker::log('fastrr: output printed outside the response (not sent): ' . \substr($out, 0, 2000));
        }
    }

    /**
     * Resets the container's services between requests (see the class comment).
     *
     * @return bool false when the reset failed: the state cannot be trusted, the worker ends
     */
    private function resetServices(): bool
    {
        try {
            if ($this->kernel instanceof Kernel) {
                $this->kernel->boot();
            } elseif ($this->kernel instanceof KernelInterface) {
                $container = $this->kernel->getContainer();
                if ($container->has('services_resetter')) {
                    $container->get('services_resetter')->reset();
                }
            }
        } catch (\Throwable $e) {
            Worker::log('fastrr: resetting services failed, the worker ends: ' . $e);
            return false;
        }
        return true;
    }

    /**
     * HttpKernel's StreamedResponseListener sends a StreamedResponse from kernel.response (so
     * that php-fpm streams it before kernel.terminate). In a worker that would print the body
     * during handle(), before the status and headers could go out: the runner streams it itself.
     */
    private function removeStreamedResponseListener(KernelInterface $kernel): void
    {
        try {
            $dispatcher = $kernel->getContainer()->get('event_dispatcher');
        } catch (\Throwable) {
            return;
        }
        if (!$dispatcher instanceof EventDispatcherInterface) {
            return;
        }
        foreach ($dispatcher->getListeners(KernelEvents::RESPONSE) as $listener) {
            if (\is_array($listener) && $listener[0] instanceof StreamedResponseListener) {
                $dispatcher->removeListener(KernelEvents::RESPONSE, $listener);
            }
        }
    }

    /**
     * FrameworkBundle declares the trusted proxies at boot; a literal "REMOTE_ADDR" in them means
     * "the address this request came from", which Request::setTrustedProxies() resolves from
     * $_SERVER at that moment — unset in a worker at boot. Such a list is re-declared per request.
     */
    private function readTrustedProxies(KernelInterface $kernel): void
    {
        try {
            $container = $kernel->getContainer();
            if (!$container->hasParameter('kernel.trusted_proxies')) {
                return;
            }
            $proxies = $container->getParameter('kernel.trusted_proxies');
        } catch (\Throwable) {
            return;
        }
        $list = \is_array($proxies) ? $proxies : \array_map('trim', \explode(',', (string)$proxies));
        $list = \array_values(\array_map('strval', $list));
        if (\in_array('REMOTE_ADDR', $list, true)) {
            $this->trustedProxies = $list;
        }
    }

    private function declareTrustedProxies(string $remoteAddr): void
    {
        if ($this->trustedProxies === null) {
            return;
        }
        $list = [];
        foreach ($this->trustedProxies as $proxy) {
            if ($proxy !== 'REMOTE_ADDR') {
                $list[] = $proxy;
            } elseif ($remoteAddr !== '') {
                $list[] = $remoteAddr;
            }
        }
        Request::setTrustedProxies($list, Request::getTrustedHeaderSet());
    }

    /**
     * exit()/die() or a fatal error during a request: answer it before the process ends, as
     * php-fpm would: what was printed, status 200 — or a plain 500 after a fatal error. A stream
     * already under way is left to the server to close.
     *
     * Having answered, the worker looks free to the server, which may hand it the next request
     * before it sees the process end (that request would fail with a 502). So the worker waits
     * for that next request and answers it with stop(): the server retries it on a new worker —
     * safe, since none of it ran here — and the process then ends.
     */
    private function onShutdown(): void
    {
        if (!$this->inFlight || $this->streaming) {
            return;
        }
        $this->inFlight = false;
        $out = '';
        while (\ob_get_level() >= $this->level && $this->level > 0) {
            $out = (string)\ob_get_clean() . $out;
        }
        $error = SuperglobalsWorker::fatalError();
        $worker = $this->http->getWorker();
        try {
            if ($error !== null) {
                Worker::log('fastrr: fatal error during the request (answered 500): ' . $error['message']);
                $this->http->respond(500, self::ERROR_BODY, ['Content-Type' => ['text/plain; charset=utf-8']]);
            } else {
                Worker::log('fastrr: the app called exit during the request; the worker is replaced');
                $this->http->respond(200, $out, ['Content-Type' => ['text/html; charset=UTF-8']]);
            }
            if ($worker->waitPayload() !== null) {
                $worker->stop();
            }
        } catch (\Throwable) {
            // The relay is gone: nothing to answer.
        }
    }
}
