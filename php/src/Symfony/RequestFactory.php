<?php

declare(strict_types=1);

namespace Fastrr\Symfony;

use Fastrr\Http\PhpInput;
use Fastrr\Http\Request as FastrrRequest;
use Fastrr\Http\SuperglobalsWorker;
use Fastrr\Http\Uploads;
use Fastrr\Worker;
use Symfony\Component\HttpFoundation\File\UploadedFile;
use Symfony\Component\HttpFoundation\InputBag;
use Symfony\Component\HttpFoundation\Request;

/**
 * A fastrr request as the HttpFoundation Request that Request::createFromGlobals() builds for the
 * same bytes under nginx + php-fpm with Symfony's recommended front-controller location
 * (`try_files $uri /index.php$is_args$args`).
 *
 * Nothing here re-implements PHP's input rules: the server variables come from
 * SuperglobalsWorker::serverVars(), the query, urlencoded forms and cookies from PhpInput (PHP's
 * own parser), so a Symfony app sees what SuperglobalsWorker gives a legacy page
 * (tests/differential compares those with php-fpm). What is Symfony's own is taken from
 * createFromGlobals(): a PUT/PATCH/DELETE urlencoded body fills $request->request.
 */
final class RequestFactory
{
    /** @var array<string, mixed> $_SERVER at boot, request keys removed */
    private readonly array $bootServer;

    private readonly string $scriptName;

    /**
     * @param array<array-key, mixed> $server the process's $_SERVER
     */
    public function __construct(array $server, ?string $scriptName = null)
    {
        $this->bootServer = SuperglobalsWorker::bootServer($server);
        $script = (string)($this->bootServer['SCRIPT_FILENAME'] ?? 'index.php');
        $this->scriptName = $scriptName ?? '/' . \basename($script);
    }

    public function create(FastrrRequest $raw, ?float $now = null): Request
    {
        $server = SuperglobalsWorker::serverVars($raw, $this->bootServer, $now ?? \microtime(true));
        $server = $this->frontController($server);

        $query = [];
        $queryString = (string)$server['QUERY_STRING'];
        if ($queryString !== '') {
            \parse_str($queryString, $query);
        } elseif (!\str_contains($raw->uri, '?')) {
            $query = $raw->query;
        }

        $post = [];
        $files = [];
        $content = $raw->body;
        if ($raw->parsed) {
            // A multipart POST the server parsed; PHP has no php://input for it either.
            $content = '';
            try {
                $post = PhpInput::phpNames($raw->getParsedBody() ?? []);
            } catch (\JsonException $e) {
                Worker::log('fastrr: the server sent a parsed body that is not JSON: ' . $e->getMessage());
            }
            $files = self::files(PhpInput::phpNames($raw->uploads));
        } elseif ($raw->method === 'POST' && PhpInput::isUrlencoded((string)$server['CONTENT_TYPE'])) {
            $post = PhpInput::postForm($raw->body);
        }

        $cookies = isset($server['HTTP_COOKIE']) ? PhpInput::cookies((string)$server['HTTP_COOKIE'])
            : PhpInput::cookieMap($raw->cookies);

        $request = new Request($query, $post, [], $cookies, $files, $server, $content);

        // As Request::createFromGlobals(): PHP fills $_POST for POST only, Symfony parses the others.
        $method = \strtoupper((string)$request->server->get('REQUEST_METHOD', 'GET'));
        if (\str_starts_with((string)$request->headers->get('CONTENT_TYPE', ''), 'application/x-www-form-urlencoded')
            && \in_array($method, ['PUT', 'DELETE', 'PATCH'], true)
        ) {
            \parse_str($content, $data);
            $request->request = new InputBag($data);
        }
        return $request;
    }

    /**
     * SCRIPT_NAME, PHP_SELF and PATH_INFO of a front controller: every path is the script's,
     * except an explicit `/index.php/rest`, whose rest is the PATH_INFO (nginx's split_path_info).
     * Request::getBaseUrl()/getPathInfo() read these, so they must not depend on the path.
     *
     * @param array<string, mixed> $server
     * @return array<string, mixed>
     */
    private function frontController(array $server): array
    {
        $pathInfo = $server['SCRIPT_NAME'] === $this->scriptName ? (string)$server['PATH_INFO'] : '';
        $server['SCRIPT_NAME'] = $this->scriptName;
        $server['DOCUMENT_URI'] = $this->scriptName;
        $server['PATH_INFO'] = $pathInfo;
        $server['PHP_SELF'] = $this->scriptName . $pathInfo;
        return $server;
    }

    /**
     * The server's uploads tree as HttpFoundation files: one UploadedFile per file, nested as the
     * form named it; a field left empty (UPLOAD_ERR_NO_FILE) is given in PHP's $_FILES layout,
     * which FileBag turns into null, as it does under php-fpm (FileBag takes no null itself).
     *
     * The files are created in "test" mode: they were written by the server, not by PHP's upload
     * handler, so is_uploaded_file() is false for them and a non-test UploadedFile would call
     * itself invalid and refuse move(). In test mode isValid() only checks the error code and
     * move() renames the file, which is what a fastrr upload needs (the server deletes what is
     * left after the response).
     *
     * @param array<array-key, mixed> $tree
     * @return array<array-key, mixed>
     */
    public static function files(array $tree): array
    {
        $out = [];
        foreach ($tree as $key => $node) {
            if (!\is_array($node)) {
                continue;
            }
            $out[$key] = Uploads::isFile($node) ? self::file($node) : self::files($node);
        }
        return $out;
    }

    /**
     * @param array<array-key, mixed> $file {name, mime, size, error, tmpName}
     * @return UploadedFile|array{error: int, name: string, size: int, tmp_name: string, type: string}
     */
    private static function file(array $file): UploadedFile|array
    {
        $error = (int)$file['error'];
        if ($error === \UPLOAD_ERR_NO_FILE) {
            return ['error' => $error, 'name' => '', 'size' => 0, 'tmp_name' => '', 'type' => ''];
        }
        $ok = $error === \UPLOAD_ERR_OK;
        return new UploadedFile(
            $ok ? (string)$file['tmpName'] : '',
            Uploads::baseName((string)($file['fullPath'] ?? $file['name'] ?? '')),
            $ok || $error === \UPLOAD_ERR_PARTIAL ? (string)($file['mime'] ?? '') : null,
            $error,
            true,
        );
    }
}
