<?php

// php-fpm front controller for the upload endpoint.

declare(strict_types=1);

require __DIR__ . '/upload.php';

[$status, $body] = upload_handle($_SERVER['REQUEST_METHOD'], (string)file_get_contents('php://input'));
http_response_code($status);
header('Content-Type: application/json');
echo $body;
