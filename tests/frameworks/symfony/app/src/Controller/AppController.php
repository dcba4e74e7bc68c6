<?php

declare(strict_types=1);

namespace App\Controller;

use App\Service\Greeter;
use App\Service\RequestLedger;
use Symfony\Component\HttpFoundation\BinaryFileResponse;
use Symfony\Component\HttpFoundation\Cookie;
use Symfony\Component\HttpFoundation\File\UploadedFile;
use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\RedirectResponse;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\RequestStack;
use Symfony\Component\HttpFoundation\Response;
use Symfony\Component\HttpFoundation\ResponseHeaderBag;
use Symfony\Component\HttpFoundation\StreamedResponse;
use Symfony\Component\HttpKernel\Exception\NotFoundHttpException;
use Symfony\Component\HttpKernel\HttpKernelInterface;

/**
 * The routes of the test app. Everything a response shows is what the request gave the app, so
 * that fastrr and php-fpm can be compared byte for byte; the few per-process values (pid, resets)
 * are only on /ledger, which the differential test leaves out.
 */
final class AppController
{
    public function __construct(
        private readonly Greeter $greeter,
        private readonly RequestLedger $ledger,
        private readonly RequestStack $requestStack,
        private readonly HttpKernelInterface $httpKernel,
    ) {
    }

    public function index(): Response
    {
        return new Response("Hello from Symfony\n", 200, ['Content-Type' => 'text/plain; charset=UTF-8']);
    }

    public function greet(Request $request, string $name): JsonResponse
    {
        return new JsonResponse(['greeting' => $this->greeter->greet($name), 'locale' => $request->getLocale()]);
    }

    /**
     * What HttpFoundation made of the request.
     */
    public function dump(Request $request): JsonResponse
    {
        $headers = $request->headers->all();
        // Set by HttpKernel itself: PHP's output-buffer depth, which is the SAPI's, not the request's.
        unset($headers['x-php-ob-level']);
        ksort($headers);
        $json = null;
        if ($request->getContentType() === 'json') {
            try {
                $json = $request->toArray();
            } catch (\Throwable $e) {
                $json = ['error' => \get_class($e)];
            }
        }
        return new JsonResponse([
            'method' => $request->getMethod(),
            'uri' => $request->getUri(),
            'requestUri' => $request->getRequestUri(),
            'pathInfo' => $request->getPathInfo(),
            'baseUrl' => $request->getBaseUrl(),
            'basePath' => $request->getBasePath(),
            'host' => $request->getHost(),
            'port' => $request->getPort(),
            'scheme' => $request->getScheme(),
            'secure' => $request->isSecure(),
            'clientIp' => $request->getClientIp(),
            'user' => $request->getUser(),
            'password' => $request->getPassword(),
            'contentType' => $request->getContentType(),
            'query' => $request->query->all(),
            'request' => $request->request->all(),
            'cookies' => $request->cookies->all(),
            'content' => $request->getContent(),
            'json' => $json,
            'headers' => $headers,
            'ajax' => $request->isXmlHttpRequest(),
            'languages' => $request->getLanguages(),
        ]);
    }

    public function upload(Request $request): JsonResponse
    {
        $files = self::describe($request->files->all());
        $moved = null;
        $up = $request->files->get('up');
        if ($up instanceof UploadedFile && $up->isValid()) {
            $dir = \sys_get_temp_dir() . '/fastrr-symfony-moved-' . \getmypid();
            $target = $up->move($dir, 'moved.txt'); // fastrr: a rename; php-fpm: move_uploaded_file()
            $moved = \file_get_contents($target->getPathname());
            \unlink($target->getPathname());
            \rmdir($dir);
        }
        return new JsonResponse(['files' => $files, 'request' => $request->request->all(), 'moved' => $moved]);
    }

    /**
     * @param array<array-key, mixed> $files
     * @return array<array-key, mixed>
     */
    private static function describe(array $files): array
    {
        $out = [];
        foreach ($files as $key => $file) {
            if (\is_array($file)) {
                $out[$key] = self::describe($file);
            } elseif ($file instanceof UploadedFile) {
                $ok = $file->getError() === \UPLOAD_ERR_OK;
                $out[$key] = [
                    'name' => $file->getClientOriginalName(),
                    'mime' => $file->getClientMimeType(),
                    'error' => $file->getError(),
                    'valid' => $file->isValid(),
                    'size' => $ok ? $file->getSize() : null,
                    'sha1' => $ok ? \sha1_file($file->getPathname()) : null,
                ];
            } else {
                $out[$key] = $file;
            }
        }
        return $out;
    }

    public function cookies(Request $request): JsonResponse
    {
        $response = new JsonResponse(['cookies' => $request->cookies->all()]);
        $response->headers->setCookie(Cookie::create('visited', 'yes', 0, '/', null, false, true, false, 'lax'));
        $response->headers->setCookie(Cookie::create('raw value', 'a b;c', 0, '/cookies'));
        $response->headers->clearCookie('gone');
        return $response;
    }

    public function sessionSet(Request $request): JsonResponse
    {
        $value = (string)$request->query->get('value', '');
        $request->getSession()->set('value', $value);
        return new JsonResponse(['stored' => $value]);
    }

    public function sessionGet(Request $request): JsonResponse
    {
        $session = $request->getSession();
        return new JsonResponse(['value' => $session->get('value'), 'all' => $session->all()]);
    }

    public function sessionClear(Request $request): JsonResponse
    {
        $request->getSession()->invalidate();
        return new JsonResponse(['cleared' => true]);
    }

    public function redirect(Request $request): RedirectResponse
    {
        $permanent = $request->query->getBoolean('permanent');
        return new RedirectResponse('/dump?from=redirect', $permanent ? 301 : 302);
    }

    public function item(int $id): JsonResponse
    {
        if ($id !== 1) {
            throw new NotFoundHttpException("No item $id.");
        }
        return new JsonResponse(['id' => 1, 'name' => 'the first item']);
    }

    public function boom(): Response
    {
        throw new \RuntimeException('boom: an exception in a controller');
    }

    public function error(): Response
    {
        // An \Error, which HttpKernel::handle() in 5.4 does not catch (only \Exception).
        throw new \Error('an Error in a controller');
    }

    public function quit(): Response
    {
        echo "bye\n";
        exit;
    }

    /**
     * ?n=chunks; ?wait=path: after the first chunk, wait (up to 10 s) until that file exists, so
     * a test can prove the first chunk reached it before the response was complete.
     */
    public function stream(Request $request): StreamedResponse
    {
        $n = \max(1, \min(100, $request->query->getInt('n', 3)));
        $wait = (string)$request->query->get('wait', '');
        return new StreamedResponse(static function () use ($n, $wait): void {
            for ($i = 1; $i <= $n; $i++) {
                echo "chunk $i\n";
                \ob_flush();
                \flush();
                if ($i === 1 && $wait !== '') {
                    $deadline = \microtime(true) + 10;
                    while (!\is_file($wait) && \microtime(true) < $deadline) {
                        \usleep(10000);
                    }
                }
            }
        }, 200, ['Content-Type' => 'text/plain; charset=UTF-8']);
    }

    /**
     * files/sample.bin, or with ?size=N a generated file of N bytes (deleted after sending).
     */
    public function file(Request $request): BinaryFileResponse
    {
        $size = $request->query->getInt('size');
        if ($size <= 0) {
            $response = new BinaryFileResponse(\dirname(__DIR__, 2) . '/files/sample.bin');
            $response->setContentDisposition(ResponseHeaderBag::DISPOSITION_ATTACHMENT, 'sample.bin');
            return $response;
        }
        $path = \tempnam(\sys_get_temp_dir(), 'fastrr-symfony-file-');
        $block = \str_repeat('0123456789abcdef', 4096); // 64 KiB
        $fh = \fopen($path, 'wb');
        for ($left = $size; $left > 0; $left -= \strlen($block)) {
            \fwrite($fh, \substr($block, 0, \min($left, \strlen($block))));
        }
        \fclose($fh);
        $headers = ['Content-Type' => 'application/octet-stream'];
        $response = new BinaryFileResponse($path, 200, $headers, true, null, false, false);
        return $response->deleteFileAfterSend(true);
    }

    public function ledger(Request $request): JsonResponse
    {
        $before = $this->ledger->record($request->getPathInfo());
        return new JsonResponse([
            'pid' => \getmypid(),
            'entries_before' => $before,
            'resets' => $this->ledger->resets(),
            'stack_empty_at_reset' => $this->ledger->stackEmptyAtReset(),
        ]);
    }

    /**
     * The request stack seen from a controller: only this request on it (no leftover from an
     * earlier one), plus, with ?sub=1, what a sub-request sees.
     */
    public function stack(Request $request): JsonResponse
    {
        $view = [
            'uri' => $request->getRequestUri(),
            'main' => $this->requestStack->getMainRequest()?->getRequestUri(),
            'parent' => $this->requestStack->getParentRequest()?->getRequestUri(),
        ];
        if ($request->query->getBoolean('sub')) {
            $sub = $this->httpKernel->handle(Request::create('/stack?inner=1'), HttpKernelInterface::SUB_REQUEST);
            $view['sub'] = \json_decode((string)$sub->getContent(), true);
        }
        if ($request->query->getBoolean('fail')) {
            throw new \RuntimeException('failing after looking at the stack');
        }
        return new JsonResponse($view);
    }
}
