<?php

declare(strict_types=1);

namespace Fastrr\Debug;

use Fastrr\Worker;

/**
 * The state-leak detector (`<plugin>.pool.debug_state: true`, which the pool
 * passes to its workers as FASTRR_DEBUG_STATE=1): after every request it compares
 * the globals and the static properties of the app's classes with what they were
 * after boot, and writes one line to stderr (fastrr logs it with the worker's PID)
 * for each change that survived the request:
 *
 *   debug_state: App\Cache::$items grew from 0 to 1532 entries after 40 requests
 *
 * and the growth of memory_get_usage() since the first request (warm-up excluded) with the
 * last request's delta.
 *
 * Rules of this class:
 * - Worker::waitPayload() calls check() before waiting for each payload: the first
 *   call takes the boot snapshot, each later one follows exactly one request (HTTP,
 *   jobs, anything on a Worker). Worker creates this object only when the variable
 *   is set; otherwise nothing here is loaded or run.
 * - What is compared is a signature per path (kind, size, a label, an identity),
 *   never a copy of the value. Arrays are sized by count(COUNT_RECURSIVE); objects
 *   of the app's own classes are looked into (their properties are paths too, down
 *   to DEPTH), other objects only by class and identity.
 * - Reports are rate-limited per path: the first change, then only when the kind
 *   or class changes or the size's distance from boot at least doubles (a growing
 *   array gives about log2(n) lines, a request object replaced on every request one).
 * - Classes watched: every user class whose file is neither under a vendor/
 *   directory nor under the include path (where Debian keeps the framework
 *   libraries), fastrr's own excepted; or, when FASTRR_DEBUG_STATE_CLASSES lists
 *   namespace prefixes, exactly the classes under them. Classes loaded after boot
 *   are compared with their declared defaults.
 * - Globals watched: every global except the superglobals and the variables the
 *   worker script itself assigns at its top level (its loop's $request, $response,
 *   ... change on every request by design), read from the script with the tokenizer.
 */
final class StateWatch
{
    public const ENV = 'FASTRR_DEBUG_STATE';
    public const ENV_CLASSES = 'FASTRR_DEBUG_STATE_CLASSES';

    /** Properties of the app's objects are looked into this many levels deep. */
    private const DEPTH = 2;

    /** Memory growth since boot below this is not reported (allocator and cache warm-up). */
    private const MEMORY_MIN = 256 * 1024;

    private const SUPERGLOBALS = [
        'GLOBALS' => true, '_GET' => true, '_POST' => true, '_COOKIE' => true, '_FILES' => true,
        '_SERVER' => true, '_ENV' => true, '_REQUEST' => true, '_SESSION' => true,
        'argv' => true, 'argc' => true, 'http_response_header' => true,
    ];

    /** A path that does not exist (a global not set, a property not there). */
    private const ABSENT = ['unset', 0, 'unset', null];

    /** @var array<string, array{0: string, 1: int|float, 2: string, 3: mixed}> path => signature after boot */
    private array $baseline = [];

    /**
     * @var array<string, array{0: string, 1: int|float, 2: string, 3: int}>
     *      path => [kind, distance, label, requests] at its last report
     */
    private array $reported = [];

    /** @var list<array{0: string, 1: list<\ReflectionProperty>}> watched classes with their own statics */
    private array $classes = [];

    /** Classes of get_declared_classes() already looked at. */
    private int $classCount = 0;

    /** @var array<string, bool> class => is it the app's (objects of it are looked into) */
    private array $scope = [];

    /** @var array<string, true> the worker script's own top-level variables */
    private array $scriptVars = [];

    /** @var list<string> */
    private array $libraryDirs = [];

    private bool $booted = false;
    private bool $failed = false;
    /** The boot snapshot is taken: classes found from now on start from their defaults. */
    private bool $baselineTaken = false;
    private int $requests = 0;
    private int $firstMemory = 0;
    private int $lastMemory = 0;
    private int $reportedGrowth = 0;

    /** @var \Closure(string): void */
    private \Closure $log;

    /**
     * @param list<string> $prefixes namespace prefixes of the classes to watch; [] for the default scope
     * @param (\Closure(string): void)|null $log where lines go (default: the worker's stderr)
     */
    public function __construct(private readonly array $prefixes = [], ?\Closure $log = null)
    {
        $this->log = $log ?? static function (string $line): void {
            Worker::log($line);
        };
    }

    /**
     * From FASTRR_DEBUG_STATE / FASTRR_DEBUG_STATE_CLASSES; null when the first is unset, empty or 0.
     */
    public static function fromEnvironment(): ?self
    {
        $on = \getenv(self::ENV);
        if ($on === false || $on === '' || $on === '0') {
            return null;
        }
        $prefixes = [];
        foreach (\explode(',', (string)\getenv(self::ENV_CLASSES)) as $prefix) {
            $prefix = \ltrim(\trim($prefix), '\\');
            if ($prefix !== '') {
                $prefixes[] = $prefix;
            }
        }
        return new self($prefixes);
    }

    /**
     * The first call takes the boot snapshot; each later call compares the state after one more request.
     */
    public function check(): void
    {
        if ($this->failed) {
            return;
        }
        try {
            $this->compare();
        } catch (\Throwable $e) {
            // A debugging aid must never take the worker down: it says why and stops.
            $this->failed = true;
            $this->line(\sprintf('check failed, off for this worker from now on: %s: %s', $e::class,
                $e->getMessage()));
        }
    }

    private function compare(): void
    {
        if (!$this->booted) {
            $this->boot();
            return;
        }
        // Measured before this check allocates its own snapshot.
        $memory = \memory_get_usage();
        ++$this->requests;
        $now = $this->snapshot();
        foreach ($now as $path => $sig) {
            $base = $this->baseline[$path] ?? self::ABSENT;
            if ($sig !== $base) {
                $this->changed($path, $base, $sig);
            }
        }
        foreach ($this->baseline as $path => $base) {
            // Only a global can go away; a property inside an object that was replaced is not news.
            if ($path[0] === '$' && !\str_contains($path, '->') && !isset($now[$path]) && $base !== self::ABSENT) {
                $this->changed($path, $base, self::ABSENT);
            }
        }
        $this->memory($memory);
    }

    private function boot(): void
    {
        $this->booted = true;
        foreach (\explode(\PATH_SEPARATOR, (string)\get_include_path()) as $dir) {
            $real = $dir === '' || $dir === '.' ? false : \realpath($dir);
            if ($real !== false) {
                $this->libraryDirs[] = \rtrim($real, '/') . '/';
            }
        }
        $main = \get_included_files()[0] ?? '';
        $this->scriptVars = self::scriptVariables($main);
        $this->baseline = $this->snapshot();
        $this->baselineTaken = true;
        // After the snapshot: the baseline itself stays in memory for good.
        $this->lastMemory = \memory_get_usage();
    }

    /**
     * @return array<string, array{0: string, 1: int|float, 2: string, 3: mixed}>
     */
    private function snapshot(): array
    {
        $out = [];
        $seen = [];
        $this->discoverClasses();
        foreach ($this->classes as [$class, $props]) {
            foreach ($props as $prop) {
                $path = $class . '::$' . $prop->getName();
                if (!$prop->isInitialized()) {
                    $out[$path] = self::ABSENT;
                    continue;
                }
                $this->walk($out, $seen, $path, $prop->getValue(), 0);
            }
        }
        foreach ($GLOBALS as $name => $value) {
            $name = (string)$name;
            if (isset(self::SUPERGLOBALS[$name]) || isset($this->scriptVars[$name])) {
                continue;
            }
            $this->walk($out, $seen, '$' . $name, $value, 0);
        }
        return $out;
    }

    /**
     * @param array<string, array{0: string, 1: int|float, 2: string, 3: mixed}> $out
     * @param array<int, true> $seen objects already looked into
     */
    private function walk(array &$out, array &$seen, string $path, mixed $value, int $depth): void
    {
        $out[$path] = self::signature($value);
        if (!\is_object($value) || $depth >= self::DEPTH || $value instanceof \Closure) {
            return;
        }
        $id = \spl_object_id($value);
        if (isset($seen[$id]) || !$this->isApp($value::class)) {
            return;
        }
        $seen[$id] = true;
        foreach (\get_mangled_object_vars($value) as $key => $child) {
            $key = (string)$key;
            if ($key !== '' && $key[0] === "\0") {
                $key = \substr($key, (int)\strrpos($key, "\0") + 1);
            }
            $this->walk($out, $seen, $path . '->' . $key, $child, $depth + 1);
        }
    }

    /**
     * Classes declared since the last look (get_declared_classes() only appends);
     * those in scope with static properties of their own are watched from now on.
     * A class first seen after boot starts from its declared defaults.
     */
    private function discoverClasses(): void
    {
        $declared = \get_declared_classes();
        $count = \count($declared);
        for ($i = $this->classCount; $i < $count; ++$i) {
            $class = $declared[$i];
            if (!$this->isWatched($class)) {
                continue;
            }
            $props = [];
            foreach ((new \ReflectionClass($class))->getProperties(\ReflectionProperty::IS_STATIC) as $prop) {
                if ($prop->getDeclaringClass()->getName() === $class) {
                    $props[] = $prop;
                    if ($this->baselineTaken) {
                        $path = $class . '::$' . $prop->getName();
                        $this->baseline[$path] = $prop->hasDefaultValue() || !$prop->hasType()
                            ? self::signature($prop->getDefaultValue()) : self::ABSENT;
                    }
                }
            }
            if ($props !== []) {
                $this->classes[] = [$class, $props];
            }
        }
        $this->classCount = $count;
    }

    /** Are the statics of $class watched? */
    private function isWatched(string $class): bool
    {
        if ($this->prefixes !== []) {
            foreach ($this->prefixes as $prefix) {
                if (\str_starts_with($class, $prefix)) {
                    return (new \ReflectionClass($class))->isUserDefined();
                }
            }
            return false;
        }
        return $this->isApp($class);
    }

    /** Is $class the app's own (default scope), or under a listed prefix? */
    private function isApp(string $class): bool
    {
        if (isset($this->scope[$class])) {
            return $this->scope[$class];
        }
        $app = false;
        if ($this->prefixes !== []) {
            foreach ($this->prefixes as $prefix) {
                $app = $app || \str_starts_with($class, $prefix);
            }
        } elseif (!\str_starts_with($class, 'Fastrr\\')) {
            $rc = new \ReflectionClass($class);
            $file = $rc->isUserDefined() ? $rc->getFileName() : false;
            $app = $file !== false && !\str_contains($file, '/vendor/');
            foreach ($this->libraryDirs as $dir) {
                $app = $app && !\str_starts_with((string)$file, $dir);
            }
        }
        return $this->scope[$class] = $app;
    }

    /**
     * @param array{0: string, 1: int|float, 2: string, 3: mixed} $base
     * @param array{0: string, 1: int|float, 2: string, 3: mixed} $now
     */
    private function changed(string $path, array $base, array $now): void
    {
        $absent = $base[0] === 'unset';
        $measured = $now[0] === 'array' || $now[0] === 'number' || $now[0] === 'string';
        if ($absent && ($now[0] === 'null' || $now[3] === false || ($measured && $now[1] === 0))) {
            return; // a new global / property that holds nothing yet (`global $x;`, a fresh object's defaults)
        }
        $kind = $now[0] === 'object' ? 'object ' . $now[2] : $now[0];
        $sized = $measured && ($now[0] === $base[0] || $absent);
        $distance = $sized ? \abs($now[1] - ($absent ? 0 : $base[1])) : 0;
        $last = $this->reported[$path] ?? null;
        // Again only when the kind changes, the distance from boot doubles, or a new value
        // shows up after twice as many requests as the last report (a value replaced on
        // every request - the current user - gives lines ever further apart).
        if ($last !== null && $last[0] === $kind && ($distance <= $last[1] || $distance < 2 * $last[1])
            && ($now[2] === $last[2] || $this->requests < 2 * $last[3])) {
            return;
        }
        $this->reported[$path] = [$kind, $distance, $now[2], $this->requests];
        $from = $absent ? 'unset' : (string)$base[1];
        $grew = $absent || $now[1] > $base[1] ? 'grew' : 'shrank';
        if ($sized && $now[0] === 'array') {
            $what = \sprintf('%s from %s to %d entries', $grew, $from, $now[1]);
        } elseif ($sized && $now[0] === 'string' && \is_int($now[3]) && $now[1] !== $base[1]) {
            // a long string (its identity is a checksum): sizes, not texts
            $what = \sprintf('%s from %s to %d bytes', $grew, $from, $now[1]);
        } else {
            $what = \sprintf('changed from %s to %s', $base[2], $now[2]);
        }
        $this->line(\sprintf('%s %s after %s', $path, $what, self::requests($this->requests)));
    }

    private function memory(int $memory): void
    {
        $delta = $memory - $this->lastMemory;
        $this->lastMemory = $memory;
        if ($this->requests === 1) {
            // The first request loads and compiles what boot did not need: memory
            // is counted from after it, so warm-up is not reported as growth.
            $this->firstMemory = $memory;
            return;
        }
        $growth = $memory - $this->firstMemory;
        if ($growth < self::MEMORY_MIN || $growth < 2 * $this->reportedGrowth) {
            return;
        }
        $this->reportedGrowth = $growth;
        $this->line(\sprintf(
            'memory_get_usage() grew from %s after the first request to %s after %s (%s/request on average, '
            . '%s in the last request)',
            self::bytes($this->firstMemory),
            self::bytes($memory),
            self::requests($this->requests),
            self::bytes((int)\round($growth / ($this->requests - 1)), true),
            self::bytes($delta, true),
        ));
    }

    private function line(string $text): void
    {
        ($this->log)('debug_state: ' . $text);
    }

    /**
     * [kind, size, label for messages, identity]: equal signatures mean "unchanged".
     *
     * @return array{0: string, 1: int|float, 2: string, 3: mixed}
     */
    private static function signature(mixed $value): array
    {
        return match (true) {
            $value === null => ['null', 0, 'null', null],
            \is_bool($value) => ['bool', 0, $value ? 'true' : 'false', $value],
            \is_float($value) && \is_nan($value) => ['nan', 0, 'NAN', 'NAN'], // (NAN !== NAN)
            \is_int($value), \is_float($value) => ['number', $value, (string)$value, $value],
            \is_string($value) => ['string', \strlen($value), \strlen($value) <= 40
                ? \var_export($value, true) : \sprintf('a string of %d bytes', \strlen($value)),
                \strlen($value) <= 40 ? $value : \crc32($value)],
            // (@: an array that contains itself makes count() warn; the count is still made)
            \is_array($value) => ['array', $n = @\count($value, \COUNT_RECURSIVE),
                \sprintf('an array of %d entries', $n), null],
            \is_object($value) => ['object', 0, (\stripos('aeiou', $value::class[0]) === false ? 'a ' : 'an ')
                . $value::class . ' object', \spl_object_id($value)],
            default => ['resource', 0, 'a ' . \get_debug_type($value), (int)$value],
        };
    }

    /**
     * The variables a script assigns or reads at its top level (outside function,
     * class and closure bodies, and outside parameter lists).
     *
     * @return array<string, true>
     */
    public static function scriptVariables(string $file): array
    {
        if ($file === '' || !\function_exists('token_get_all') || !\is_file($file)) {
            return [];
        }
        $code = \file_get_contents($file);
        if ($code === false) {
            return [];
        }
        $names = [];
        $depth = 0;
        $bodies = [];       // depths at which a function / class body was opened
        $pending = false;   // between `function` / `class` and its body
        $previous = null;
        foreach (\token_get_all($code) as $token) {
            if (\is_array($token)) {
                $id = $token[0];
                if ($id === \T_WHITESPACE || $id === \T_COMMENT || $id === \T_DOC_COMMENT) {
                    continue;
                }
                if ($id === \T_FUNCTION || $id === \T_TRAIT || $id === \T_INTERFACE || $id === \T_ENUM
                    || ($id === \T_CLASS && $previous !== \T_DOUBLE_COLON)) {
                    $pending = true;
                } elseif ($id === \T_VARIABLE && $bodies === [] && !$pending) {
                    $names[\substr($token[1], 1)] = true;
                } elseif ($id === \T_CURLY_OPEN || $id === \T_DOLLAR_OPEN_CURLY_BRACES) {
                    ++$depth; // "{$x}" / "${x}" in a string: closed by a plain '}'
                }
                $previous = $id;
                continue;
            }
            if ($token === '{') {
                ++$depth;
                if ($pending) {
                    $bodies[] = $depth;
                    $pending = false;
                }
            } elseif ($token === '}') {
                if ($bodies !== [] && \end($bodies) === $depth) {
                    \array_pop($bodies);
                }
                --$depth;
            } elseif ($token === ';' && $pending) {
                $pending = false; // `use function X;`, an abstract method
            }
            $previous = $token;
        }
        return $names;
    }

    private static function requests(int $n): string
    {
        return $n === 1 ? '1 request' : $n . ' requests';
    }

    private static function bytes(int $n, bool $signed = false): string
    {
        $sign = $signed ? ($n < 0 ? '-' : '+') : ($n < 0 ? '-' : '');
        $abs = \abs($n);
        return match (true) {
            $abs >= 1048576 => \sprintf('%s%.1f MB', $sign, $abs / 1048576),
            $abs >= 1024 => \sprintf('%s%.1f KB', $sign, $abs / 1024),
            default => \sprintf('%s%d bytes', $sign, $abs),
        };
    }
}
