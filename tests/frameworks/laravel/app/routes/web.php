<?php

/*
 * The test app's routes (group "web": cookies, session, the app's middleware). Each one shows a
 * part of Laravel that a long-lived worker must get right; /state shows what must not leak.
 */

declare(strict_types=1);

use App\Http\Controllers\UserController;
use App\Services\BootCounter;
use App\Services\Greeter;
use App\Services\RequestContext;
use App\Services\RequestHolder;
use Illuminate\Http\Request;
use Illuminate\Http\UploadedFile;
use Illuminate\Support\Facades\App;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\Facades\Cookie;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\Facades\View;

Route::get('/', static fn () => response('home', 200, ['Content-Type' => 'text/plain']));

Route::get('/hello/{name}', static fn (string $name) => view('hello', ['name' => $name]));

Route::get('/json', static fn (Greeter $greeter) => [
    'app' => config('app.name'),
    'greeting' => $greeter->greet('json'),
]);

Route::get('/query', static fn (Request $request) => [
    'query' => $request->query(),
    'all' => $request->all(),
    'path' => $request->path(),
    'full_url' => $request->fullUrl(),
    'base_url' => $request->getBaseUrl(),
    'path_info' => $request->getPathInfo(),
]);

Route::match(['POST', 'PUT', 'PATCH', 'DELETE'], '/form', static fn (Request $request) => [
    'method' => $request->method(),
    'real_method' => $request->getRealMethod(),
    'input' => $request->all(),
    'post' => $request->request->all(),
    'is_json' => $request->isJson(),
    'content' => $request->getContent(),
]);

Route::post('/json-body', static fn (Request $request) => [
    'json' => $request->json()->all(),
    'a' => $request->input('a'),
    'nested' => $request->input('b.c'),
    'all' => $request->all(),
]);

Route::post('/upload', static function (Request $request) {
    $files = [];
    foreach (\Illuminate\Support\Arr::dot($request->allFiles()) as $field => $file) {
        if (!$file instanceof UploadedFile) {
            continue;
        }
        $files[$field] = [
            'client_name' => $file->getClientOriginalName(),
            'client_mime' => $file->getClientMimeType(),
            'extension' => $file->getClientOriginalExtension(),
            'size' => $file->getSize(),
            'error' => $file->getError(),
            'valid' => $file->isValid(),
            'sha1' => $file->isValid() ? sha1_file($file->getRealPath()) : null,
        ];
    }
    return ['input' => $request->except(array_keys($request->allFiles())), 'files' => $files,
            'has_file' => $request->hasFile('doc')];
});

Route::get('/cookies', static fn (Request $request) => ['cookies' => $request->cookies->all()]);

Route::get('/cookies/set', static function () {
    Cookie::queue('theme', 'dark', 60);
    return response('cookies set', 200, ['Content-Type' => 'text/plain'])
        ->cookie('plain', 'v1', 10)
        ->cookie('secret', 'encrypted-value', 10);
});

Route::get('/login', static fn () => response('please log in', 200, ['Content-Type' => 'text/plain']))->name('login');
Route::post('/login', [UserController::class, 'login']);
Route::get('/me', [UserController::class, 'me']);
Route::post('/logout', [UserController::class, 'logout']);
Route::get('/private', static fn () => 'private for ' . Auth::user()->name)->middleware('auth');

Route::get('/session/put', static function (Request $request) {
    $request->session()->put('data', (string)$request->query('v', ''));
    return ['data' => $request->session()->get('data')];
});
Route::get('/session', static fn (Request $request) => ['data' => $request->session()->get('data')]);

Route::get('/locale/{locale}', static function (string $locale) {
    App::setLocale($locale);
    return ['locale' => App::getLocale(), 'hello' => __('messages.hello')];
});
Route::get('/locale', static fn () => ['locale' => App::getLocale(), 'hello' => __('messages.hello')]);

Route::get('/redirect', static fn () => redirect('/json'));
Route::get('/redirect/away', static fn () => redirect()->away('https://example.test/x?y=1', 301));
Route::get('/abort', static fn () => abort(404, 'nothing here'));
Route::get('/forbidden', static fn () => abort(403));
Route::get('/boom', static function (): never {
    throw new RuntimeException('boom from the test app');
});
Route::get('/exit', static function (): never {
    echo 'bye';
    exit;
});
Route::get('/fatal', static function (): void {
    ini_set('memory_limit', '64M');
    $hog = [];
    while (true) {
        $hog[] = str_repeat('x', 1024 * 1024); // "Allowed memory size exhausted": a fatal error
    }
});
Route::get('/echo', static function () {
    echo 'printed;';
    return 'returned';
});

Route::get('/trusted', static fn (Request $request) => [
    'ip' => $request->ip(),
    'secure' => $request->secure(),
    'host' => $request->getHost(),
    'port' => $request->getPort(),
    'scheme' => $request->getScheme(),
    'url' => url('/x'),
]);

Route::get('/server', static fn (Request $request) => [
    'https' => $request->server('HTTPS'),
    'remote_addr' => $request->server('REMOTE_ADDR'),
    'request_uri' => $request->server('REQUEST_URI'),
    'script_name' => $request->server('SCRIPT_NAME'),
    'query_string' => $request->server('QUERY_STRING'),
    'method' => $request->server('REQUEST_METHOD'),
    'user_agent' => $request->userAgent(),
    'header_x_test' => $request->header('X-Test'),
    'bearer' => $request->bearerToken(),
    'auth_user' => $request->getUser(),
    'auth_password' => $request->getPassword(),
]);

// Streams: "chunk 1", then waits (at most 5 s) until the test creates the go-file, then "chunk 2":
// the client can only have chunk 1 before the go-file exists if it was streamed.
Route::get('/stream', static fn (Request $request) => response()->stream(static function () use ($request): void {
    echo "chunk 1\n";
    ob_flush();
    flush();
    $go = storage_path('app/go-' . preg_replace('/[^a-z0-9]/', '', (string)$request->query('token', 'x')));
    for ($i = 0; $i < 100 && $request->query->has('token') && !is_file($go); $i++) {
        usleep(50000);
    }
    echo "chunk 2\n";
    ob_flush();
    flush();
    echo 'end';
}, 200, ['Content-Type' => 'text/plain']));

Route::get('/download', static fn () => response()->download(public_path('sample.txt'), 'report.txt'));
Route::get('/file', static fn () => response()->file(public_path('sample.txt'), ['Content-Type' => 'text/plain']));

Route::get('/pid', static fn () => ['pid' => getmypid(), 'memory' => memory_get_usage()]);

Route::get('/db/log', static function () {
    DB::enableQueryLog();
    DB::select('select 1');
    return ['queries' => count(DB::getQueryLog())];
});
Route::get('/db/begin', static function () {
    DB::beginTransaction();
    return ['level' => DB::transactionLevel()];
});
Route::get('/db/level', static fn () => ['level' => DB::transactionLevel()]);

Route::get('/config/set', static function () {
    config(['app.dynamic' => 'changed by a request']);
    return ['dynamic' => config('app.dynamic')];
});

// Everything a request could leave behind for the next one. ?who=X marks the request; /state/dirty
// also logs nothing in but changes every piece of request state it can.
Route::get('/state', static fn (Request $request) => fastrr_test_state($request));
Route::get('/state/dirty', static function (Request $request) {
    $who = (string)$request->query('who');
    App::setLocale('fr');
    \Carbon\Carbon::setLocale('fr'); // what Carbon's Laravel provider does on LocaleUpdated
    $request->session()->put('data', "data of $who");
    View::share('shared_by_request', $who);
    config(['app.dynamic' => $who]);
    app(RequestContext::class)->notes['who'] = $who;
    DB::enableQueryLog();
    DB::select('select 1');
    return fastrr_test_state($request);
});

/** @return array<string, mixed> */
function fastrr_test_state(Request $request): array
{
    $counter = app(BootCounter::class);
    $counter->requests++;
    return [
        'user' => Auth::user()?->name,
        'session_data' => $request->session()->get('data'),
        'logged_in_as' => $request->session()->get('logged_in_as'),
        'locale' => App::getLocale(),
        'hello' => __('messages.hello'),
        'carbon_locale' => \Carbon\Carbon::getLocale(),
        'queued_cookies' => array_map(static fn ($c) => $c->getName(), array_values(Cookie::getQueuedCookies())),
        'who' => $request->query('who'),
        'holder_who' => app(RequestHolder::class)->request->query('who'),
        'app_request_is_this' => app('request') === $request,
        'url_current' => url()->full(),
        'router_request_who' => Route::getCurrentRequest()?->query('who'),
        'view_shared' => array_values(array_diff(array_keys(View::getShared()), ['__env', 'app'])),
        'view_app_is_current' => View::getShared()['app'] === app(),
        'config_dynamic' => config('app.dynamic'),
        'context_id' => app(RequestContext::class)->id,
        'context_notes' => app(RequestContext::class)->notes,
        'query_log' => count(DB::getQueryLog()),
        'boot_requests' => $counter->requests,
        'pid' => getmypid(),
    ];
}
