<?php

/*
 * A worker whose app leaks state on purpose, for the state-leak detector
 * (pool.debug_state, php/src/Debug/StateWatch.php; tests/integration/test_leaks_state.py).
 *
 * Routes (JSON {"pid", ...}):
 *   /grow?kb=N       App\Cache::$items gets one more entry (N KiB of text, default 0: the URI)
 *   /hold            the App\Registry singleton (made at boot) keeps the current request
 *   /login?user=U    remember() sets the global $currentUser
 *   /probe           {"watch_loaded": whether the detector's class was ever loaded}
 *   anything else    nothing is kept (locals only)
 */

declare(strict_types=1);

namespace App {
    final class Cache
    {
        /** @var list<string> */
        public static array $items = [];
    }

    final class Registry
    {
        private static ?self $instance = null;
        public ?object $request = null;

        public static function instance(): self
        {
            return self::$instance ??= new self();
        }
    }

    function remember(string $user): void
    {
        global $currentUser;
        $currentUser = $user;
    }
}

namespace {
    require __DIR__ . '/../../php/autoload.php';

    use Fastrr\Http\HttpWorker;
    use Fastrr\Worker;

    App\Registry::instance(); // booted with the app, empty
    $http = new HttpWorker(Worker::create());

    while ($request = $http->waitRequest()) {
        $path = (string)parse_url($request->uri, PHP_URL_PATH);
        $out = ['pid' => getmypid()];
        if ($path === '/grow') {
            $kb = (int)($request->query['kb'] ?? 0);
            App\Cache::$items[] = $kb > 0 ? str_repeat('c', $kb * 1024) : $request->uri;
            $out['items'] = count(App\Cache::$items);
        } elseif ($path === '/hold') {
            App\Registry::instance()->request = $request;
        } elseif ($path === '/login') {
            App\remember((string)($request->query['user'] ?? 'nobody'));
        } elseif ($path === '/probe') {
            $out['watch_loaded'] = class_exists('Fastrr\Debug\StateWatch', false);
        } else {
            $local = str_repeat('t', 4096); // a local: gone with the request
            $out['len'] = strlen($local);
        }
        $http->respond(200, (string)json_encode($out), ['Content-Type' => ['application/json']]);
    }
}
