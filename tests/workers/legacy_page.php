<?php

// A page written the old way: superglobals in, echo/header()/exit out.
// $served comes from the worker (requests served by this process, this one included).

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);

if ($path === '/headers') {
    header('X-Legacy: yes');
    header('X-Multi: a');
    header('X-Multi: b', false);
    setcookie('first', 'one');
    setcookie('second', 'two', ['path' => '/p', 'httponly' => true]);
    http_response_code(201);
    echo 'created by ', getmypid();
    return;
}

if ($path === '/redirect') {
    echo 'moving';
    header('X-Before-Exit: 1');
    header('Location: /x');
    exit;
}

if ($path === '/die') {
    http_response_code(403);
    die('forbidden by ' . getmypid());
}

if ($path === '/throw') {
    header('X-Not-Sent: 1');
    echo 'half a page';
    throw new RuntimeException('boom: secret details');
}

if ($path === '/status-header') {
    header('Status: 404 Not Found');
    echo 'nope';
    return;
}

if ($path === '/nested-buffers') {
    echo 'a';
    ob_start();
    echo 'b';
    ob_start();
    echo 'c';
    return; // left open on purpose
}

if ($path === '/json') {
    $data = json_decode(file_get_contents('php://input'), true);
    header('Content-Type: application/json');
    echo json_encode(['got' => $data, 'method' => $_SERVER['REQUEST_METHOD'], 'type' => $_SERVER['CONTENT_TYPE'] ?? null]);
    return;
}

// Default: describe what the page sees.
$files = [];
foreach ($_FILES as $field => $file) {
    $files[$field] = $file;
    if (is_string($file['tmp_name']) && $file['tmp_name'] !== '') {
        $files[$field]['content'] = file_get_contents($file['tmp_name']);
    }
}
$server = [];
foreach ($_SERVER as $key => $value) {
    if (str_starts_with($key, 'HTTP_') || in_array($key, ['REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SERVER_PROTOCOL',
        'REQUEST_SCHEME', 'HTTPS', 'SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'CONTENT_TYPE', 'CONTENT_LENGTH',
        'REQUEST_TIME', 'REQUEST_TIME_FLOAT', 'SCRIPT_NAME', 'PHP_SELF', 'SCRIPT_FILENAME', 'PHP_AUTH_USER', 'PHP_AUTH_PW', 'REMOTE_USER'], true)) {
        $server[$key] = $value;
    }
}
header('Content-Type: application/json');
echo json_encode([
    'pid' => getmypid(),
    'served' => $served,
    'sapi' => PHP_SAPI,
    'get' => $_GET,
    'post' => $_POST,
    'cookie' => $_COOKIE,
    'files' => $files,
    'request' => $_REQUEST,
    'server' => $server,
    'input' => file_get_contents('php://input'),
]);
