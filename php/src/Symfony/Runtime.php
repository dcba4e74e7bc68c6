<?php

declare(strict_types=1);

namespace Fastrr\Symfony;

use Fastrr\Http\HttpWorker;
use Fastrr\Worker;
use Symfony\Component\HttpKernel\HttpKernelInterface;
use Symfony\Component\Runtime\RunnerInterface;
use Symfony\Component\Runtime\SymfonyRuntime;

/**
 * A symfony/runtime runtime that turns a Symfony app's own front controller into a fastrr worker:
 *
 *     APP_RUNTIME=Fastrr\Symfony\Runtime php public/index.php      (server.command, env from server.env)
 *
 * It extends SymfonyRuntime, so everything the default runtime does still happens the same way
 * (APP_ENV/APP_DEBUG, .env files when symfony/dotenv is there, the error handler, the console and
 * the arguments the app closure asks for). Only the runner differs, and only for an HTTP kernel
 * started by fastrr (RR_MODE=http): the kernel boots once and Runner serves requests in a loop.
 * Anywhere else (php-fpm, the console, a test) the same index.php runs as it always did, which is
 * what lets one front controller serve both.
 *
 * Options (APP_RUNTIME_OPTIONS or the "runtime" extra of composer.json), on top of SymfonyRuntime's:
 *  - "fastrr_script_name": the SCRIPT_NAME requests see (default "/" + the front controller's file
 *    name, e.g. "/index.php"), as nginx's `try_files $uri /index.php$is_args$args` gives it;
 *  - "fastrr_chunk_size": bytes of captured output per streamed frame (default 65536).
 */
class Runtime extends SymfonyRuntime
{
    public function getRunner(?object $application): RunnerInterface
    {
        if ($application instanceof HttpKernelInterface && self::servedByFastrr()) {
            return new Runner($application, new HttpWorker(Worker::create()), $this->options);
        }
        return parent::getRunner($application);
    }

    /**
     * True when this process is an HTTP worker of fastrr (or of RoadRunner: the same variable).
     */
    public static function servedByFastrr(): bool
    {
        $mode = $_SERVER['RR_MODE'] ?? $_ENV['RR_MODE'] ?? \getenv('RR_MODE');
        return $mode === 'http';
    }
}
