<?php

declare(strict_types=1);

namespace App;

use App\Controller\ItemController;
use App\Service\Catalog;
use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\HttpKernel\Kernel as BaseKernel;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;

/**
 * The benchmark's Symfony 5.4 app (trimmed from tests/frameworks/symfony): a MicroKernel with
 * FrameworkBundle, one JSON API route whose controller gets a service built from a container
 * parameter. Cache and logs go under APP_VAR_DIR (`fastrr bench` gives each run its own, warmed
 * by warmup.php before the servers start), never next to the code.
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
        return \is_string($dir) && $dir !== '' ? $dir : \sys_get_temp_dir() . '/fastrr-bench-symfony';
    }

    private function configureContainer(ContainerConfigurator $container): void
    {
        $container->extension('framework', [
            'secret' => 'fastrr-bench-symfony',
            'http_method_override' => false,
            'router' => ['utf8' => true],
            'php_errors' => ['log' => true],
        ]);
        $container->parameters()->set('app.name', 'fastrr-bench-symfony');
        $container->parameters()->set('catalog.currency', 'EUR');
        $container->parameters()->set('catalog.vat_percent', 19);

        $services = $container->services();
        $services->defaults()->autowire()->autoconfigure();
        $services->set(Catalog::class)
            ->arg('$currency', '%catalog.currency%')
            ->arg('$vatPercent', '%catalog.vat_percent%');
        $services->set(ItemController::class)->public()->tag('controller.service_arguments')
            ->arg('$appName', '%app.name%');
    }

    private function configureRoutes(RoutingConfigurator $routes): void
    {
        $routes->add('item', '/api/item/{id}')->controller([ItemController::class, 'show'])
            ->requirements(['id' => '\d+'])->methods(['GET']);
    }
}
