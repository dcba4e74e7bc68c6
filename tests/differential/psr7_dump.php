<?php
// What a PSR-7 application can observe of its ServerRequestInterface, as JSON: shared by the
// php-fpm side (psr7_fpm.php, the request built from superglobals) and fastrr's (psr7_worker.php).

use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\UploadedFileInterface;

function diff_psr7_view(ServerRequestInterface $r): string
{
    $hex = static function (mixed $v) use (&$hex): mixed {
        if (is_array($v)) {
            $out = [];
            foreach ($v as $k => $item) {
                $out[is_string($k) && preg_match('//u', $k) !== 1 ? 'hex:' . bin2hex($k) : $k] = $hex($item);
            }
            return $out;
        }
        return is_string($v) && preg_match('//u', $v) !== 1 ? 'hex:' . bin2hex($v) : $v;
    };
    $files = static function (array $tree) use (&$files): array {
        $out = [];
        foreach ($tree as $k => $f) {
            if ($f instanceof UploadedFileInterface) {
                $content = $f->getError() === UPLOAD_ERR_OK ? (string)$f->getStream() : '';
                $out[$k] = ['name' => $f->getClientFilename(), 'type' => $f->getClientMediaType(),
                    'size' => $f->getSize(), 'error' => $f->getError(), 'sha1' => sha1($content)];
            } else {
                $out[$k] = $files($f);
            }
        }
        return $out;
    };
    $keys = ['REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'CONTENT_TYPE', 'CONTENT_LENGTH', 'SERVER_PROTOCOL',
        'REQUEST_SCHEME', 'HTTPS', 'REMOTE_ADDR'];
    $server = array_filter($r->getServerParams(), static fn ($k) => in_array($k, $keys, true)
        || str_starts_with((string)$k, 'HTTP_'), ARRAY_FILTER_USE_KEY);
    ksort($server);
    $headers = array_change_key_case($r->getHeaders());
    ksort($headers);
    return json_encode($hex([
        'method' => $r->getMethod(),
        'uri' => (string)$r->getUri(),
        'protocol' => $r->getProtocolVersion(),
        'headers' => $headers,
        'query' => $r->getQueryParams(),
        'parsed' => $r->getParsedBody(),
        'cookies' => $r->getCookieParams(),
        'files' => $files($r->getUploadedFiles()),
        'server' => $server,
        'body' => (string)$r->getBody(),
    ]), JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRETTY_PRINT) . "\n";
}
