<?php

declare(strict_types=1);

namespace App;

use App\Controller\AppController;
use App\Service\Greeter;
use App\Service\RequestLedger;
use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\HttpKernel\Kernel as BaseKernel;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;

/**
 * A small Symfony 5.4 MicroKernel app for fastrr's framework tests: routes in PHP, one controller
 * with its services injected, a ResetInterface service that records its resets, native file
 * sessions. Cache, logs and sessions go under APP_VAR_DIR (the tests give each server its own).
 */
final class Kernel extends BaseKernel
{
    use MicroKernelTrait;

    public function registerBundles(): iterable
    {
        yield new FrameworkBundle();
    }

    public function getProjectDir(): string
    {
        return \dirname(__DIR__);
    }

    public function getCacheDir(): string
    {
        return $this->varDir() . '/cache/' . $this->environment;
    }

    public function getLogDir(): string
    {
        return $this->varDir() . '/log';
    }

    private function varDir(): string
    {
        $dir = $_SERVER['APP_VAR_DIR'] ?? $_ENV['APP_VAR_DIR'] ?? '';
        return \is_string($dir) && $dir !== '' ? $dir : $this->getProjectDir() . '/var';
    }

    private function configureContainer(ContainerConfigurator $container): void
    {
        $container->extension('framework', [
            'secret' => 'fastrr-symfony-test',
            'http_method_override' => false,
            'router' => ['utf8' => true],
            // The peer that connected is trusted (a proxy in front of the app): X-Forwarded-* apply.
            'trusted_proxies' => 'REMOTE_ADDR',
            'trusted_headers' => ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port'],
            'session' => [
                'storage_factory_id' => 'session.storage.factory.native',
                'handler_id' => 'session.handler.native_file',
                'save_path' => $this->varDir() . '/sessions',
                'cookie_samesite' => 'lax',
            ],
            'php_errors' => ['log' => true],
        ]);
        $container->parameters()->set('app.greeting', 'Hello');

        $services = $container->services();
        $services->defaults()->autowire()->autoconfigure();
        $services->set(Greeter::class)->arg('$greeting', '%app.greeting%');
        $services->set(RequestLedger::class); // autoconfigured: ResetInterface → tag kernel.reset
        $services->set(AppController::class)->public()->tag('controller.service_arguments');
    }

    private function configureRoutes(RoutingConfigurator $routes): void
    {
        $c = AppController::class;
        $routes->add('index', '/')->controller([$c, 'index'])->methods(['GET', 'HEAD']);
        $routes->add('greet', '/greet/{name}')->controller([$c, 'greet'])->requirements(['name' => '[a-z]+']);
        $routes->add('dump', '/dump')->controller([$c, 'dump']);
        $routes->add('upload', '/upload')->controller([$c, 'upload'])->methods(['POST']);
        $routes->add('cookies', '/cookies')->controller([$c, 'cookies']);
        $routes->add('session_set', '/session/set')->controller([$c, 'sessionSet']);
        $routes->add('session_get', '/session/get')->controller([$c, 'sessionGet']);
        $routes->add('session_clear', '/session/clear')->controller([$c, 'sessionClear']);
        $routes->add('redirect', '/redirect')->controller([$c, 'redirect']);
        $routes->add('item', '/item/{id}')->controller([$c, 'item'])->requirements(['id' => '\d+']);
        $routes->add('boom', '/boom')->controller([$c, 'boom']);
        $routes->add('error', '/error')->controller([$c, 'error']);
        $routes->add('exit', '/exit')->controller([$c, 'quit']);
        $routes->add('stream', '/stream')->controller([$c, 'stream']);
        $routes->add('file', '/file')->controller([$c, 'file']);
        $routes->add('ledger', '/ledger')->controller([$c, 'ledger']);
        $routes->add('stack', '/stack')->controller([$c, 'stack']);
    }
}
