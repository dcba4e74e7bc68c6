<?php

// php-fpm front controller for the API app: routes compiled on every request.

declare(strict_types=1);

require __DIR__ . '/api.php';

[$status, $body] = api_handle(
    api_routes(),
    $_SERVER['REQUEST_METHOD'],
    (string)parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH),
    (string)file_get_contents('php://input'),
);
http_response_code($status);
header('Content-Type: application/json');
echo $body;
