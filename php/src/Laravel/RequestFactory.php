<?php

declare(strict_types=1);

namespace Fastrr\Laravel;

use Fastrr\Http\PhpInput;
use Fastrr\Http\Request;
use Fastrr\Http\SuperglobalsWorker;
use Fastrr\Http\Uploads;
use Illuminate\Http\Request as LaravelRequest;
use Illuminate\Http\UploadedFile;
use Symfony\Component\HttpFoundation\Request as SymfonyRequest;

/**
 * Turns a fastrr request into the Illuminate\Http\Request that Laravel's public/index.php would
 * build under nginx + php-fpm (`Request::capture()`), from the same parts PHP's SAPI would give it:
 * the server vars, query, form and cookies come from the php/ library's PHP rules
 * (SuperglobalsWorker::serverVars, PhpInput), so names, nesting and limits are PHP's own.
 *
 * The server vars are those of a front-controller setup (`try_files $uri /index.php?$query_string`):
 * SCRIPT_NAME and PHP_SELF are /index.php and SCRIPT_FILENAME the app's public/index.php, so that
 * Symfony finds an empty base URL and the whole path as path info, as it does behind nginx.
 */
final class RequestFactory
{
    /** @var array<string, mixed> the process's $_SERVER without request keys */
    private readonly array $bootServer;

    public function __construct(private readonly string $publicPath)
    {
        $this->bootServer = SuperglobalsWorker::bootServer($_SERVER);
    }

    public function create(Request $request, ?float $now = null): LaravelRequest
    {
        $server = SuperglobalsWorker::serverVars($request, $this->bootServer, $now ?? \microtime(true));
        $server['SCRIPT_FILENAME'] = $this->publicPath . '/index.php';
        $server['DOCUMENT_ROOT'] = $this->publicPath;
        $server['SCRIPT_NAME'] = $server['PHP_SELF'] = $server['DOCUMENT_URI'] = '/index.php';
        $server['PATH_INFO'] = '';

        $query = [];
        if ((string)$server['QUERY_STRING'] !== '') {
            \parse_str((string)$server['QUERY_STRING'], $query);
        }

        $post = [];
        $files = [];
        if ($request->parsed) {
            // A multipart POST the server parsed (PHP has no body for it either).
            $post = PhpInput::phpNames($request->getParsedBody() ?? []);
            $files = self::uploadedFiles(PhpInput::phpNames($request->uploads));
        } elseif ($request->method === 'POST' && PhpInput::isUrlencoded((string)$server['CONTENT_TYPE'])) {
            $post = PhpInput::postForm($request->body);
        }

        $cookies = isset($server['HTTP_COOKIE']) ? PhpInput::cookies((string)$server['HTTP_COOKIE'])
            : PhpInput::cookieMap($request->cookies);

        SymfonyRequest::enableHttpMethodParameterOverride();
        $content = $request->parsed ? '' : $request->body;
        $base = new SymfonyRequest($query, $post, [], $cookies, $files, $server, $content);
        // Symfony's createFromGlobals(): a urlencoded PUT/PATCH/DELETE body is the form too.
        if (
            \str_starts_with((string)$base->headers->get('CONTENT_TYPE', ''), 'application/x-www-form-urlencoded')
            && \in_array(\strtoupper($request->method), ['PUT', 'DELETE', 'PATCH'], true)
        ) {
            \parse_str($request->body, $data);
            $base->request = new \Symfony\Component\HttpFoundation\InputBag($data);
        }
        // Laravel's capture(): the JSON body as input source, Illuminate's own classes.
        return LaravelRequest::createFromBase($base);
    }

    /**
     * The uploads tree (nested like the field names) with Illuminate UploadedFile leaves.
     *
     * The files were written by the server, not uploaded through PHP's SAPI, so PHP's
     * is_uploaded_file()/move_uploaded_file() refuse them: they are created in Symfony's "test"
     * mode, in which isValid() only checks the error code and move() renames the file.
     * Laravel keeps that flag when it converts them (UploadedFile::createFromBase()).
     *
     * @param array<array-key, mixed> $tree
     * @return array<array-key, mixed>
     */
    public static function uploadedFiles(array $tree): array
    {
        $out = [];
        foreach ($tree as $key => $node) {
            if (!\is_array($node)) {
                continue;
            }
            if (!Uploads::isFile($node)) {
                $out[$key] = self::uploadedFiles($node);
                continue;
            }
            $error = (int)$node['error'];
            if ($error === \UPLOAD_ERR_NO_FILE) {
                // No file sent: as under php-fpm, Symfony's FileBag turns this $_FILES entry into null.
                $out[$key] = ['name' => '', 'type' => '', 'tmp_name' => '', 'error' => $error, 'size' => 0];
                continue;
            }
            $ok = $error === \UPLOAD_ERR_OK;
            $out[$key] = new UploadedFile(
                $ok ? (string)$node['tmpName'] : '',
                Uploads::baseName((string)($node['fullPath'] ?? $node['name'] ?? '')),
                $ok || $error === \UPLOAD_ERR_PARTIAL ? (string)($node['mime'] ?? '') : null,
                $error,
                true,
            );
        }
        return $out;
    }
}
