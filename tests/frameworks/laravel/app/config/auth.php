<?php

return [
    'defaults' => ['guard' => 'web', 'passwords' => 'users'],
    'guards' => [
        'web' => ['driver' => 'session', 'provider' => 'users'],
    ],
    'providers' => [
        // App\Auth\MemoryUserProvider: two fixed users, no database.
        'users' => ['driver' => 'memory'],
    ],
];
