<?php

/*
 * What the hot-ceiling scripts share (bench/hot/<app>.php): options, the clock, an in-memory
 * relay, and the one JSON line of results.
 *
 * A hot script boots its app once, as its fastrr worker does, then serves the benchmark request
 * over and over in this process: no server, no pipe, no other process on the core. Two modes:
 *
 *   worker  the worker's own serving code (Fastrr\Laravel\Worker, Fastrr\Symfony\Runner,
 *           bench/apps/slim/serve.php) over HotRelay, which hands it the request frame that
 *           fastrr's front sends for wrk's request and keeps the answer: request decoding, the
 *           framework, terminate, the per-request resets (Sandbox, services_resetter) and
 *           response encoding, exactly as in the worker; only the relay's read/write is gone.
 *   bare    the framework alone: a request built by the framework's own factory, through its
 *           kernel (handle, terminate), no fastrr code, no resets beyond the framework's own.
 *
 * Options: --mode worker|bare, --iterations N (timed calls; 0: use --seconds), --seconds S,
 * --warmup N (untimed calls first, default 200), --frame FILE (the request frame; default: built
 * here from --path as fastrr's front encodes a GET with only a Host header).
 * Output (stdout): one JSON object: calls, wall_s, cpu_s, calls_per_s, cpu_us, status, body, ...
 */

declare(strict_types=1);

require_once __DIR__ . '/../../php/autoload.php';

use Fastrr\Frame;
use Fastrr\Relay\RelayException;
use Fastrr\Relay\RelayInterface;

/** @return array{mode: string, iterations: int, seconds: float, warmup: int, frame: ?string, path: ?string} */
function hot_options(array $argv): array
{
    $opts = ['mode' => 'worker', 'iterations' => 0, 'seconds' => 2.0, 'warmup' => 200, 'frame' => null, 'path' => null];
    for ($i = 1; $i < \count($argv); $i++) {
        $name = \ltrim($argv[$i], '-');
        if (!\array_key_exists($name, $opts) || !isset($argv[$i + 1])) {
            \fwrite(\STDERR, "usage: {$argv[0]} [--mode worker|bare] [--iterations N | --seconds S] [--warmup N] "
                . "[--frame FILE] [--path /x]\n");
            exit(2);
        }
        $value = $argv[++$i];
        $opts[$name] = match ($name) {
            'iterations', 'warmup' => \max(0, (int)$value),
            'seconds' => \max(0.0, (float)$value),
            default => $value,
        };
    }
    if (!\in_array($opts['mode'], ['worker', 'bare'], true)) {
        \fwrite(\STDERR, "--mode must be worker or bare, not {$opts['mode']}\n");
        exit(2);
    }
    if ($opts['iterations'] === 0 && $opts['seconds'] <= 0.0) {
        \fwrite(\STDERR, "give --iterations N or --seconds S (> 0)\n");
        exit(2);
    }
    return $opts;
}

/**
 * Counts calls: the first `warmup` are not timed; then wall and CPU time run until `iterations`
 * calls (or `seconds`) are done.
 */
final class HotClock
{
    public int $calls = 0;

    private int $started = 0;

    private ?int $t0 = null;

    private int $t1 = 0;

    /** @var array<string, int> */
    private array $ru0 = [];

    /** @var array<string, int> */
    private array $ru1 = [];

    public function __construct(private readonly int $warmup, private readonly int $iterations,
                                private readonly float $seconds)
    {
    }

    /** Before each call: false when the timed calls are done (the clock then stops). */
    public function next(): bool
    {
        if ($this->t0 === null) {
            if ($this->started++ < $this->warmup) {
                return true;
            }
            $this->ru0 = \getrusage();
            $this->t0 = \hrtime(true);
        }
        $done = $this->iterations > 0
            ? $this->calls >= $this->iterations
            : (\hrtime(true) - $this->t0) >= $this->seconds * 1e9;
        if ($done) {
            $this->t1 = \hrtime(true);
            $this->ru1 = \getrusage();
            return false;
        }
        $this->calls++;
        return true;
    }

    /** @return array<string, float|int> */
    public function result(): array
    {
        $cpu = static fn (array $ru, string $k): float => $ru["ru_$k.tv_sec"] + $ru["ru_$k.tv_usec"] / 1e6;
        $user = $cpu($this->ru1, 'utime') - $cpu($this->ru0, 'utime');
        $sys = $cpu($this->ru1, 'stime') - $cpu($this->ru0, 'stime');
        $wall = ($this->t1 - (int)$this->t0) / 1e9;
        $n = \max(1, $this->calls);
        return [
            'calls' => $this->calls, 'warmup' => $this->warmup, 'wall_s' => $wall, 'cpu_s' => $user + $sys,
            'user_s' => $user, 'sys_s' => $sys, 'calls_per_s' => $wall > 0 ? $this->calls / $wall : 0.0,
            'wall_us' => $wall / $n * 1e6, 'cpu_us' => ($user + $sys) / $n * 1e6,
        ];
    }
}

/**
 * The worker's relay, in memory: every waitFrame() is the same request frame (until the clock
 * says done: then the "server closed the relay" exception ends the worker's loop, as EOF on its
 * pipe would), every send() is kept as the last answer.
 */
final class HotRelay implements RelayInterface
{
    public ?Frame $last = null;

    public int $answers = 0;

    public function __construct(private readonly Frame $request, private readonly HotClock $clock)
    {
    }

    public function waitFrame(): Frame
    {
        if (!$this->clock->next()) {
            throw new RelayException('hot loop done');
        }
        return $this->request;
    }

    public function send(Frame $frame): void
    {
        $this->last = $frame;
        $this->answers++;
    }

    public function hasFrame(): bool
    {
        return true;
    }

    /** @return array{0: int, 1: string} status and body of the last answer */
    public function answer(): array
    {
        if ($this->last === null) {
            return [0, ''];
        }
        $ctxLen = $this->last->options[0] ?? 0;
        $ctx = \json_decode((string)\substr($this->last->payload, 0, $ctxLen), true);
        return [(int)($ctx['status'] ?? 0), (string)\substr($this->last->payload, $ctxLen)];
    }
}

/** The request frame: read from --frame, else the JSON context fastrr's front sends for a plain GET. */
function hot_frame(array $opts, string $defaultPath): Frame
{
    if ($opts['frame'] !== null) {
        $bytes = \file_get_contents($opts['frame']);
        if ($bytes === false || \strlen($bytes) < Frame::HEADER_SIZE) {
            \fwrite(\STDERR, "cannot read a frame from {$opts['frame']}\n");
            exit(2);
        }
        [$flags, $len, $nopt, $byte10] = Frame::parseHeader(\substr($bytes, 0, Frame::HEADER_SIZE));
        return Frame::fromParts($flags, $nopt, $byte10, (string)\substr($bytes, Frame::HEADER_SIZE, $len + $nopt * 4));
    }
    $path = $opts['path'] ?? $defaultPath;
    $ctx = \json_encode([
        'remoteAddr' => '127.0.0.1', 'protocol' => 'HTTP/1.1', 'method' => 'GET',
        'uri' => 'http://127.0.0.1:8080' . $path, 'headers' => new \stdClass(), 'cookies' => new \stdClass(),
        'rawQuery' => (string)\parse_url($path, \PHP_URL_QUERY), 'parsed' => false, 'uploads' => null,
        'attributes' => new \stdClass(),
    ], \JSON_UNESCAPED_SLASHES);
    return new Frame($ctx, [\strlen($ctx)], Frame::CODEC_JSON);
}

/** The bare mode's loop: $one() serves one request and returns [status, body]. */
function hot_bare(HotClock $clock, callable $one): array
{
    $answer = [0, ''];
    while ($clock->next()) {
        $answer = $one();
    }
    return $answer;
}

/**
 * The bare mode of an HttpKernel (Laravel's and Symfony's have the same handle/terminate
 * over HttpFoundation requests): $requestClass::create($uri) handled and terminated.
 */
function hot_kernel(HotClock $clock, object $kernel, string $requestClass, string $uri): array
{
    return hot_bare($clock, static function () use ($kernel, $requestClass, $uri): array {
        $request = $requestClass::create($uri, 'GET');
        $response = $kernel->handle($request);
        $body = (string)$response->getContent();
        $kernel->terminate($request, $response);
        return [$response->getStatusCode(), $body];
    });
}

/** Prints the result line (straight to the stdout stream: no output buffer of the worker sees it). */
function hot_report(string $app, array $opts, HotClock $clock, array $answer, float $bootS): void
{
    $opcache = \function_exists('opcache_get_status') ? \opcache_get_status(false) : false;
    $out = ['app' => $app, 'mode' => $opts['mode'], 'boot_s' => $bootS] + $clock->result() + [
        'status' => $answer[0], 'body' => \substr($answer[1], 0, 4096),
        'opcache' => \is_array($opcache) && !empty($opcache['opcache_enabled']),
        'opcache_scripts' => \is_array($opcache) ? (int)($opcache['opcache_statistics']['num_cached_scripts'] ?? 0) : 0,
        'jit' => \is_array($opcache) && !empty($opcache['jit']['on']),
        'memory_peak_mib' => \memory_get_peak_usage(true) / 2 ** 20, 'php' => \PHP_VERSION, 'pid' => \getmypid(),
    ];
    \fwrite(\STDOUT, \json_encode($out, \JSON_UNESCAPED_SLASHES | \JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
}
