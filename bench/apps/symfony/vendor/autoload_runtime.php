<?php

/*
 * What the symfony/runtime Composer plugin generates as vendor/autoload_runtime.php (from the
 * component's Internal/autoload_runtime.template), written out for an app without Composer:
 *
 * 1. load the class loader; when it was already loaded (a test or a script that includes the
 *    front controller) or there is no script, do nothing more;
 * 2. require the front controller again: it returns the app closure;
 * 3. the runtime class is APP_RUNTIME (server or env variable), else the default given here; its
 *    options are APP_RUNTIME_OPTIONS plus the defaults given here (project_dir);
 * 4. the runtime resolves the closure's arguments (array $context, ...), calls it, and runs what
 *    it returns with its runner; the runner's result is the exit status.
 */

if (true === (require_once __DIR__ . '/autoload.php') || empty($_SERVER['SCRIPT_FILENAME'])) {
    return;
}

$app = require $_SERVER['SCRIPT_FILENAME'];

if (!is_object($app)) {
    throw new TypeError(sprintf('Invalid return value: callable object expected, "%s" returned from "%s".', get_debug_type($app), $_SERVER['SCRIPT_FILENAME']));
}

$runtime = $_SERVER['APP_RUNTIME'] ?? $_ENV['APP_RUNTIME'] ?? Symfony\Component\Runtime\SymfonyRuntime::class;
$runtime = new $runtime(($_SERVER['APP_RUNTIME_OPTIONS'] ?? $_ENV['APP_RUNTIME_OPTIONS'] ?? []) + ['project_dir' => dirname(__DIR__)]);

[$app, $args] = $runtime->getResolver($app)->resolve();
$app = $app(...$args);

exit($runtime->getRunner($app)->run());
