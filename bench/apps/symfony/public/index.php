<?php

// The app's front controller, as Symfony's skeleton has it. php-fpm runs it per request (the
// default SymfonyRuntime); fastrr runs the same file as its worker with
// APP_RUNTIME=Fastrr\Symfony\Runtime, which boots the kernel once and loops over requests.

use App\Kernel;

require_once dirname(__DIR__) . '/vendor/autoload_runtime.php';

return function (array $context) {
    return new Kernel($context['APP_ENV'], (bool) $context['APP_DEBUG']);
};
