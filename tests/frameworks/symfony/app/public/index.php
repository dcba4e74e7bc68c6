<?php

// The app's front controller, as Symfony's skeleton has it: unchanged for fastrr. The runtime
// (APP_RUNTIME) decides how the kernel the closure returns is run: once per request under php-fpm,
// or booted once and looping over requests under fastrr (Fastrr\Symfony\Runtime).

use App\Kernel;

require_once dirname(__DIR__) . '/vendor/autoload_runtime.php';

return function (array $context) {
    return new Kernel($context['APP_ENV'], (bool) $context['APP_DEBUG']);
};
