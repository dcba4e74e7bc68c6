<?php

return [
    'default' => 'stderr',
    'channels' => [
        // The server's log: php-fpm's (catch_workers_output) or fastrr's (worker stderr).
        'stderr' => [
            'driver' => 'monolog',
            'handler' => Monolog\Handler\StreamHandler::class,
            'with' => ['stream' => 'php://stderr'],
            'level' => 'warning',
        ],
    ],
];
