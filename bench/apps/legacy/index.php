<?php

// php-fpm front: the legacy page, run per request.

require __DIR__ . '/page.php';
