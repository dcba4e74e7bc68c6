<?php

// The /hello endpoint as a classic per-request script, for the nginx + php-fpm
// side of the benchmark. Same bytes as demo/worker.php's /hello.

header('Content-Type: application/json');
echo '{"message":"Hello, World!"}';
