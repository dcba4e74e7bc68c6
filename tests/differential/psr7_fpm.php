<?php
// php-fpm's side of the PSR-7 comparison: the server request a PSR-7 app gets from its
// superglobals, built as Nyholm's ServerRequestCreator::fromGlobals() builds it (that package
// is not in Debian, so its steps are written out here).
require '/usr/share/php/Nyholm/Psr7/autoload.php';
require __DIR__ . '/psr7_dump.php';

$f = new Nyholm\Psr7\Factory\Psr17Factory();
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
$headers = function_exists('getallheaders') ? getallheaders() : [];
$scheme = (($_SERVER['HTTPS'] ?? 'off') !== 'off') ? 'https' : 'http';
$uri = $f->createUri('')->withScheme($scheme);
if (isset($_SERVER['HTTP_HOST'])) {
    $hp = parse_url('http://' . $_SERVER['HTTP_HOST']);
    $uri = $uri->withHost($hp['host'] ?? '')->withPort($hp['port'] ?? null);
}
$requestUri = explode('?', $_SERVER['REQUEST_URI'] ?? '', 2);
$uri = $uri->withPath($requestUri[0]);
if (isset($_SERVER['QUERY_STRING'])) {
    $uri = $uri->withQuery($_SERVER['QUERY_STRING']);
}
$protocol = isset($_SERVER['SERVER_PROTOCOL']) ? str_replace('HTTP/', '', $_SERVER['SERVER_PROTOCOL']) : '1.1';
$request = $f->createServerRequest($method, $uri, $_SERVER)->withProtocolVersion($protocol);
foreach ($headers as $name => $value) {
    // Two artefacts of building from php-fpm's globals left out: getallheaders() has the empty
    // CONTENT_TYPE/CONTENT_LENGTH nginx passes as headers, and Host is already set from the URI.
    if ($value === '' && in_array(strtolower($name), ['content-type', 'content-length'], true)) {
        continue;
    }
    $request = strtolower($name) === 'host' ? $request->withHeader($name, $value) : $request->withAddedHeader($name, $value);
}
$normalize = static function (array $spec) use (&$normalize, $f): mixed {
    if (!is_array($spec['tmp_name'])) {
        $stream = $spec['error'] === UPLOAD_ERR_OK ? $f->createStreamFromFile($spec['tmp_name']) : $f->createStream('');
        return $f->createUploadedFile($stream, (int)$spec['size'], (int)$spec['error'], $spec['name'], $spec['type']);
    }
    $out = [];
    foreach (array_keys($spec['tmp_name']) as $k) {
        $out[$k] = $normalize(['tmp_name' => $spec['tmp_name'][$k], 'size' => $spec['size'][$k],
            'error' => $spec['error'][$k], 'name' => $spec['name'][$k], 'type' => $spec['type'][$k]]);
    }
    return $out;
};
$files = [];
foreach ($_FILES as $k => $spec) {
    $files[$k] = $normalize($spec);
}
$request = $request->withCookieParams($_COOKIE)->withQueryParams($_GET)->withUploadedFiles($files)
    ->withBody($f->createStream((string)file_get_contents('php://input')));
if ($method === 'POST') { // fromGlobals: $_POST only for POST forms
    $type = strtolower(trim(explode(';', $_SERVER['CONTENT_TYPE'] ?? '')[0]));
    if (in_array($type, ['application/x-www-form-urlencoded', 'multipart/form-data'], true)) {
        $request = $request->withParsedBody($_POST);
    }
}
header('Content-Type: application/json');
echo diff_psr7_view($request);
