<?php
// The page of the differential suite: the same file under nginx + php-fpm and under fastrr's
// SuperglobalsWorker. It prints, as JSON, everything a php-fpm era page can observe of its
// request, and answers with what the query asks (status, Location, cookies, a header).

// Request-describing $_SERVER keys both servers must agree on; every HTTP_* key is compared too.
// Keys set by the deployment (paths, ports, server software) are listed in php/README.md.
$serverKeys = [
    'REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'CONTENT_TYPE', 'CONTENT_LENGTH', 'SERVER_PROTOCOL',
    'REQUEST_SCHEME', 'HTTPS', 'SCRIPT_NAME', 'PHP_SELF', 'PATH_INFO', 'DOCUMENT_URI', 'REMOTE_ADDR',
    'REMOTE_USER', 'AUTH_TYPE', 'PHP_AUTH_USER', 'PHP_AUTH_PW', 'PHP_AUTH_DIGEST',
];

// Strings that are not UTF-8 would make json_encode fail: they travel as hex.
$utf8 = static function (mixed $v) use (&$utf8): mixed {
    if (is_array($v)) {
        $out = [];
        foreach ($v as $k => $item) {
            $key = is_string($k) && preg_match('//u', $k) !== 1 ? 'hex:' . bin2hex($k) : $k;
            $out[$key] = $utf8($item);
        }
        return $out;
    }
    return is_string($v) && preg_match('//u', $v) !== 1 ? 'hex:' . bin2hex($v) : $v;
};

// $_FILES with each tmp_name replaced by what the file holds (the names differ by design).
$tmpToContent = static function (mixed $v) use (&$tmpToContent): mixed {
    if (is_array($v)) {
        return array_map($tmpToContent, $v);
    }
    if (!is_string($v) || $v === '') {
        return $v;
    }
    return is_file($v) ? 'sha1:' . sha1_file($v) . ' size:' . filesize($v) : 'missing file';
};
$files = [];
foreach ($_FILES as $field => $info) {
    foreach ($info as $prop => $value) {
        $files[$field][$prop] = $prop === 'tmp_name' ? $tmpToContent($value) : $value;
    }
}

$server = [];
foreach ($_SERVER as $key => $value) {
    if (in_array($key, $serverKeys, true) || str_starts_with((string)$key, 'HTTP_')) {
        $server[$key] = $value;
    }
}
ksort($server);

$q = $_GET;
if (isset($q['_status']) && is_string($q['_status'])) {
    http_response_code((int)$q['_status']);
}
if (isset($q['_location']) && is_string($q['_location'])) {
    header('Location: ' . $q['_location']);
}
if (isset($q['_cookies'])) {
    setcookie('plain', 'a value; with=signs');
    setcookie('opts', 'x', ['expires' => 1893456000, 'path' => '/p', 'domain' => 'example.test',
        'secure' => true, 'httponly' => true, 'samesite' => 'Lax']);
    setrawcookie('raw', 'r%20aw');
}
if (isset($q['_header']) && is_string($q['_header'])) {
    header('X-Page: ' . $q['_header']);
}

header('Content-Type: application/json');
echo json_encode($utf8([
    'get' => $_GET,
    'post' => $_POST,
    'cookie' => $_COOKIE,
    'request' => $_REQUEST,
    'files' => $files,
    'server' => $server,
    'input' => file_get_contents('php://input'),
]), JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRETTY_PRINT), "\n";
