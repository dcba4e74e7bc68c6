<?php

declare(strict_types=1);

namespace Fastrr\Laravel;

use Fastrr\Worker as FastrrWorker;
use Illuminate\Container\Container;
use Illuminate\Contracts\Http\Kernel;
use Illuminate\Foundation\Application;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Facade;
use Illuminate\Support\Str;

/**
 * The per-request copy of a booted Laravel application, and everything that has to be put back
 * between two requests of a long-lived worker.
 *
 * The booted application is never handed to a request. Each request gets a clone of it: the
 * container's arrays (bindings, instances, aliases, callbacks) are copied, so whatever a request
 * binds or resolves for the first time (a singleton built during the request, an instance()
 * call) lives only in its clone and is gone with it. The objects resolved at boot are shared by
 * both, though, so the ones that keep a container or per-request state are pointed at the clone
 * and emptied here. The list is what Laravel Octane resets (its request listeners), for the
 * services Laravel 8 has; the names of the steps say what each one is for.
 *
 * Not reset, on purpose: static properties of application classes, objects a boot-time service
 * keeps in its own properties, and anything outside the container (files, the database's rows).
 */
final class Sandbox
{
    /** @var array<string, mixed>|null view data shared at boot (View::share in a provider) */
    private ?array $bootShared = null;

    /**
     * @param list<string> $flush bindings forgotten after every request (rebuilt on next use)
     */
    public function __construct(private readonly Application $app, private readonly array $flush = [])
    {
        if ($app->resolved('view')) {
            $this->bootShared = $app->make('view')->getShared();
        }
    }

    /**
     * A fresh copy of the booted application, made the current one (app(), facades), with the
     * boot-time services pointed at it and cleared of the previous request's state.
     */
    public function open(Request $request): Application
    {
        $sandbox = clone $this->app;
        self::makeCurrent($sandbox);

        // Configuration changes made by a request (config([...])) stay in its own copy.
        $sandbox->instance('config', clone $sandbox->make('config'));

        $this->giveApplication($sandbox);
        $this->flushRequestState($sandbox);

        // The request itself, in both containers: services that kept the booted one resolve it too.
        $this->app->instance('request', $request);
        $sandbox->instance('request', $request);
        if (\class_exists(\Illuminate\Pagination\PaginationState::class)) {
            \Illuminate\Pagination\PaginationState::resolveUsing($sandbox);
        }
        return $sandbox;
    }

    /**
     * After the response went out and terminate() ran: drop what the request built, give the
     * container back to the booted application.
     */
    public function close(Application $sandbox, ?Request $request): void
    {
        $this->rollBackOpenTransactions($sandbox);
        $route = $request?->route();
        if ($route instanceof \Illuminate\Routing\Route) {
            // Route objects outlive the request; so would the controller instance they cache.
            $route->flushController();
        }
        if (\method_exists($this->app, 'forgetScopedInstances')) {
            $this->app->forgetScopedInstances();
        }
        foreach ($this->flush as $binding) {
            $this->app->forgetInstance($binding);
        }
        // Compiled-view engines hold the view factory of the request (and through it the sandbox).
        if ($this->app->resolved('view.engine.resolver')) {
            $resolver = $this->app->make('view.engine.resolver');
            $resolver->forget('blade');
            $resolver->forget('php');
        }
        $sandbox->flush();
        self::makeCurrent($this->app);
        // The request must not stay reachable from the booted application until the next one.
        $this->app->forgetInstance('request');
    }

    public static function makeCurrent(Application $app): void
    {
        $app->instance('app', $app);
        $app->instance(Container::class, $app);
        Container::setInstance($app);
        Facade::clearResolvedInstances();
        Facade::setFacadeApplication($app);
    }

    /**
     * Boot-time singletons that keep the container they were built with: without this they
     * would resolve into (and store instances in) the booted application, shared by all requests.
     */
    private function giveApplication(Application $sandbox): void
    {
        $sandbox->make(Kernel::class)->setApplication($sandbox);
        $setters = [
            'router' => 'setContainer',
            'validator' => 'setContainer',
            \Illuminate\Contracts\Auth\Access\Gate::class => 'setContainer',
            \Illuminate\Contracts\Pipeline\Hub::class => 'setContainer',
            \Illuminate\Contracts\Broadcasting\Factory::class => 'setApplication',
            'db' => 'setApplication',
            'cache' => 'setApplication',
            'filesystem' => 'setApplication',
            'queue' => 'setApplication',
        ];
        foreach ($setters as $abstract => $method) {
            if ($sandbox->resolved($abstract)) {
                $service = $sandbox->make($abstract);
                if (\method_exists($service, $method)) {
                    $service->{$method}($sandbox);
                }
            }
        }
        if ($sandbox->resolved('mail.manager')) {
            $mail = $sandbox->make('mail.manager');
            $mail->setApplication($sandbox);
            $mail->forgetMailers();
        }
        if ($sandbox->resolved(\Illuminate\Notifications\ChannelManager::class)) {
            $channels = $sandbox->make(\Illuminate\Notifications\ChannelManager::class);
            $channels->setContainer($sandbox);
            $channels->forgetDrivers();
        }
        if ($sandbox->resolved('view')) {
            $view = $sandbox->make('view');
            $view->setContainer($sandbox);
            $this->restoreSharedViewData($view);
            $view->share('app', $sandbox);
            $view->flushState();
        }
    }

    /**
     * State that one request leaves in boot-time services: the user, the session, the locale,
     * the cookie queue, the log context, the query log, caches of parsed strings.
     */
    private function flushRequestState(Application $sandbox): void
    {
        $config = $sandbox->make('config');

        // Auth: guards remember their user; the guard built for a request is rebuilt.
        if ($sandbox->resolved('auth.driver')) {
            $sandbox->forgetInstance('auth.driver');
        }
        if ($sandbox->resolved('auth')) {
            $auth = $sandbox->make('auth');
            if (\method_exists($auth, 'setApplication')) {
                $auth->setApplication($sandbox);
            }
            $auth->forgetGuards();
        }

        // Session: the store keeps the attributes it loaded; StartSession merges into them.
        if ($sandbox->resolved('session')) {
            $store = $sandbox->make('session')->driver();
            $store->flush();
            $store->regenerate();
            $handler = $store->getHandler();
            if ($handler instanceof \Illuminate\Session\DatabaseSessionHandler) {
                $handler->setContainer($sandbox);
            }
        }

        // Cookies queued with Cookie::queue() by a request that never reached the middleware
        // that sends them.
        if ($sandbox->resolved('cookie')) {
            $sandbox->make('cookie')->flushQueuedCookies();
        }

        // Locale: App::setLocale() changes the translator, and Carbon's locale through an event.
        if ($sandbox->bound('translator')) {
            $translator = $sandbox->make('translator');
            $translator->setLocale((string)$config->get('app.locale', 'en'));
            $translator->setFallback((string)$config->get('app.fallback_locale', 'en'));
            if (\method_exists($translator, 'flushParsedKeys')) {
                $translator->flushParsedKeys();
            }
            if (\class_exists(\Carbon\Laravel\ServiceProvider::class)) {
                (new \Carbon\Laravel\ServiceProvider($sandbox))->updateLocale();
            }
        }

        // Database: the query log, the "records were modified" flag (sticky read/write connections).
        if ($sandbox->resolved('db')) {
            foreach ($sandbox->make('db')->getConnections() as $connection) {
                $connection->flushQueryLog();
                $connection->forgetRecordModificationState();
                if (\method_exists($connection, 'resetTotalQueryDuration')) {
                    $connection->resetTotalQueryDuration();
                    $connection->allowQueryDurationHandlersToRunAgain();
                }
            }
        }

        // Log: Log::withContext() data, Monolog's resettable handlers and processors.
        if ($sandbox->resolved('log')) {
            $log = $sandbox->make('log');
            $logger = $log->driver();
            if (\method_exists($logger, 'withoutContext')) {
                $logger->withoutContext();
            }
            foreach ($log->getChannels() as $channel) {
                $monolog = \method_exists($channel, 'getLogger') ? $channel->getLogger() : null;
                if ($monolog instanceof \Monolog\ResettableInterface) {
                    $monolog->reset();
                }
            }
        }

        // The array cache store lives as long as the worker; under php-fpm it lives one request.
        if ($config->get('cache.stores.array') && $sandbox->resolved('cache')) {
            $sandbox->make('cache')->store('array')->flush();
        }

        if (\method_exists(Str::class, 'flushCache')) {
            Str::flushCache();
        }
        if (\method_exists($sandbox, 'forgetScopedInstances')) { // Laravel >= 8.47
            $sandbox->forgetScopedInstances();
        }
    }

    /**
     * A request that left a transaction open would otherwise hand it, with its locks and
     * uncommitted rows, to the next request on the same connection.
     */
    private function rollBackOpenTransactions(Application $sandbox): void
    {
        if (!$sandbox->resolved('db')) {
            return;
        }
        foreach ($sandbox->make('db')->getConnections() as $name => $connection) {
            if ($connection->transactionLevel() > 0) {
                FastrrWorker::log(\sprintf(
                    'fastrr: a request left %d transaction(s) open on connection "%s": rolled back',
                    $connection->transactionLevel(),
                    (string)$name,
                ));
                try {
                    $connection->rollBack(0);
                } catch (\Throwable $e) {
                    FastrrWorker::log('fastrr: rollback failed, disconnecting: ' . $e->getMessage());
                    $connection->disconnect();
                }
            }
        }
    }

    /**
     * View::share() from a middleware or controller would otherwise reach every later request:
     * the shared data is put back to what it was after boot.
     */
    private function restoreSharedViewData(object $view): void
    {
        if ($this->bootShared === null) {
            $this->bootShared = $view->getShared();
            return;
        }
        $shared = $this->bootShared;
        (function () use ($shared): void {
            $this->shared = $shared;
        })->call($view);
    }
}
