<?php

declare(strict_types=1);

namespace Fastrr\Http;

/**
 * Takes over the `php://` scheme so that `php://input` reads the body of the
 * request being served (SuperglobalsWorker), while every other `php://` path
 * keeps working:
 *
 * - `php://input`: the current request body, re-readable and seekable, read only;
 * - `php://memory`, `php://temp[/maxmemory:N]`: an in-memory buffer (temp moves to
 *   a tmpfile() beyond N bytes, 2 MiB by default), like PHP's own;
 * - `php://output`: writes are printed (they go through output buffering);
 * - `php://stdin`, `php://stdout`, `php://stderr`: proxies to real handles opened
 *   before the wrapper was installed (shared, never closed by the proxy);
 * - `php://filter/…/resource=X`: X is opened (through this wrapper when it is a
 *   `php://` path, so `resource=php://input` sees the request body) and the read/write
 *   filters are appended with stream_filter_append(), as PHP's own filter wrapper does;
 * - anything else (`php://fd/N`, unknown paths): PHP's built-in wrapper is restored
 *   for the fopen() and this one put back afterwards. Each such open costs about
 *   130 bytes that PHP frees only at the end of the process (a re-registered wrapper
 *   is a request-lifetime resource).
 *
 * None of the common paths re-register the wrapper, so they cost nothing that
 * accumulates in a long-lived worker.
 *
 * @internal used by SuperglobalsWorker
 */
final class PhpStreamWrapper
{
    private const DEFAULT_TEMP_MEMORY = 2 * 1024 * 1024;

    /** The body that php://input returns. */
    private static string $input = '';

    private static bool $installed = false;

    /** @var array<string, resource> real stdin/stdout/stderr, opened before the takeover */
    private static array $std = [];

    /** @var resource|null set by PHP */
    public $context;

    /** In-memory contents (memory, temp, input). */
    private string $buffer = '';
    private int $pos = 0;
    private bool $readOnly = false;
    private bool $append = false;
    private int $spillAt = -1;

    /** @var resource|null the stream this one proxies to */
    private $inner = null;
    private bool $ownsInner = false;

    private bool $output = false;

    public static function install(): void
    {
        if (self::$installed) {
            return;
        }
        foreach (['stdin' => 'rb', 'stdout' => 'wb', 'stderr' => 'wb'] as $name => $mode) {
            $constant = \strtoupper($name);
            $handle = \defined($constant) ? \constant($constant) : @\fopen('php://' . $name, $mode);
            if (\is_resource($handle)) {
                self::$std[$name] = $handle;
            }
        }
        if (!\in_array('php', \stream_get_wrappers(), true) || !\stream_wrapper_unregister('php')) {
            return;
        }
        \stream_wrapper_register('php', self::class);
        self::$installed = true;
    }

    public static function uninstall(): void
    {
        if (self::$installed) {
            \stream_wrapper_restore('php');
            self::$installed = false;
        }
    }

    public static function isInstalled(): bool
    {
        return self::$installed;
    }

    public static function setInput(string $body): void
    {
        self::$input = $body;
    }

    public static function getInput(): string
    {
        return self::$input;
    }

    public function stream_open(string $path, string $mode, int $options, ?string &$openedPath): bool
    {
        $target = (string)\substr($path, 6); // after "php://"
        $lower = \strtolower($target);
        $readable = \str_contains($mode, 'r') || \str_contains($mode, '+');
        $writable = \strpbrk($mode, 'waxc+') !== false;

        if ($lower === 'input') {
            $this->buffer = self::$input;
            $this->readOnly = true;
            return true;
        }
        if ($lower === 'memory' || $lower === 'temp' || \str_starts_with($lower, 'temp/maxmemory:')) {
            if ($lower !== 'memory') {
                $this->spillAt = $lower === 'temp' ? self::DEFAULT_TEMP_MEMORY : \max(0, (int)\substr($target, 15));
            }
            $this->append = \str_contains($mode, 'a');
            return true;
        }
        if ($lower === 'output') {
            $this->output = true;
            return true;
        }
        if (isset(self::$std[$lower])) {
            $this->inner = self::$std[$lower];
            return true;
        }
        if (\str_starts_with($lower, 'filter/')) {
            return $this->openFilter($target, $mode, $options, $readable, $writable);
        }
        return $this->openNative($path, $mode, $options);
    }

    /**
     * php://filter/[read=a|b/][write=c/][d/]resource=X
     */
    private function openFilter(string $target, string $mode, int $options, bool $readable, bool $writable): bool
    {
        $at = \stripos($target, '/resource=');
        if ($at === false) {
            \trigger_error('No URL resource specified', \E_USER_WARNING);
            return false;
        }
        $resource = (string)\substr($target, $at + 10);
        $inner = \fopen($resource, $mode, false, $this->context);
        if (!\is_resource($inner)) {
            return false;
        }
        foreach (\explode('/', (string)\substr($target, 7, $at - 7)) as $part) {
            if ($part === '') {
                continue;
            }
            $read = $readable;
            $write = $writable;
            if (\strncasecmp($part, 'read=', 5) === 0) {
                $part = \substr($part, 5);
                $write = false;
            } elseif (\strncasecmp($part, 'write=', 6) === 0) {
                $part = \substr($part, 6);
                $read = false;
            }
            $chain = ($read ? \STREAM_FILTER_READ : 0) | ($write ? \STREAM_FILTER_WRITE : 0);
            if ($chain === 0) {
                continue;
            }
            foreach (\explode('|', $part) as $name) {
                $name = \urldecode($name);
                if ($name !== '' && @\stream_filter_append($inner, $name, $chain) === false) {
                    \trigger_error(\sprintf('Unable to create filter (%s)', $name), \E_USER_WARNING);
                }
            }
        }
        $this->inner = $inner;
        $this->ownsInner = true;
        return true;
    }

    /** Opens the path with PHP's own php:// wrapper. */
    private function openNative(string $path, string $mode, int $options): bool
    {
        \stream_wrapper_restore('php');
        try {
            // PHP strips STREAM_REPORT_ERRORS from $options for user wrappers; the caller's
            // own @ still silences the real wrapper's warnings.
            $inner = \fopen($path, $mode, false, $this->context);
        } finally {
            \stream_wrapper_unregister('php');
            \stream_wrapper_register('php', self::class);
        }
        if (!\is_resource($inner)) {
            return false;
        }
        $this->inner = $inner;
        $this->ownsInner = true;
        return true;
    }

    public function stream_read(int $count): string|false
    {
        if ($this->inner !== null) {
            return \fread($this->inner, $count);
        }
        if ($this->output) {
            return false;
        }
        $chunk = (string)\substr($this->buffer, $this->pos, $count);
        $this->pos += \strlen($chunk);
        return $chunk;
    }

    public function stream_write(string $data): int
    {
        if ($this->inner !== null) {
            return (int)\fwrite($this->inner, $data);
        }
        if ($this->output) {
            echo $data;
            return \strlen($data);
        }
        if ($this->readOnly) {
            return 0;
        }
        $len = \strlen($this->buffer);
        if ($this->append) {
            $this->pos = $len;
        }
        if ($this->pos === $len) {
            $this->buffer .= $data;
        } else {
            if ($this->pos > $len) {
                $this->buffer .= \str_repeat("\0", $this->pos - $len);
            }
            $this->buffer = \substr_replace($this->buffer, $data, $this->pos, \strlen($data));
        }
        $this->pos += \strlen($data);
        if ($this->spillAt >= 0 && \strlen($this->buffer) > $this->spillAt) {
            $this->spill();
        }
        return \strlen($data);
    }

    /** php://temp grew beyond its memory limit: continue in a temporary file. */
    private function spill(): void
    {
        $file = \tmpfile();
        if ($file === false) {
            $this->spillAt = -1; // stay in memory
            return;
        }
        \fwrite($file, $this->buffer);
        \fseek($file, $this->pos);
        $this->buffer = '';
        $this->inner = $file;
        $this->ownsInner = true;
    }

    public function stream_eof(): bool
    {
        if ($this->inner !== null) {
            return \feof($this->inner);
        }
        return $this->output || $this->pos >= \strlen($this->buffer);
    }

    public function stream_seek(int $offset, int $whence = \SEEK_SET): bool
    {
        if ($this->inner !== null) {
            return \fseek($this->inner, $offset, $whence) === 0;
        }
        if ($this->output) {
            return false;
        }
        $base = match ($whence) {
            \SEEK_SET => 0,
            \SEEK_CUR => $this->pos,
            \SEEK_END => \strlen($this->buffer),
            default => -1,
        };
        if ($base < 0 || $base + $offset < 0) {
            return false;
        }
        $this->pos = $base + $offset;
        return true;
    }

    public function stream_tell(): int
    {
        if ($this->inner !== null) {
            return (int)\ftell($this->inner);
        }
        return $this->pos;
    }

    public function stream_flush(): bool
    {
        // At the end of the process PHP may free the inner stream first.
        return !\is_resource($this->inner) || \fflush($this->inner);
    }

    public function stream_truncate(int $size): bool
    {
        if ($this->inner !== null) {
            return \ftruncate($this->inner, $size);
        }
        if ($this->readOnly || $this->output || $size < 0) {
            return false;
        }
        $len = \strlen($this->buffer);
        $this->buffer = $size <= $len ? \substr($this->buffer, 0, $size) : $this->buffer . \str_repeat("\0", $size - $len);
        return true;
    }

    /**
     * @return array<int|string, int>|false
     */
    public function stream_stat(): array|false
    {
        if ($this->inner !== null) {
            return \fstat($this->inner);
        }
        $size = $this->output ? 0 : \strlen($this->buffer);
        $mode = 0100000 | ($this->readOnly ? 0444 : 0666);
        return ['dev' => 0, 'ino' => 0, 'mode' => $mode, 'nlink' => 1, 'uid' => 0, 'gid' => 0, 'rdev' => -1,
            'size' => $size, 'atime' => 0, 'mtime' => 0, 'ctime' => 0, 'blksize' => -1, 'blocks' => -1];
    }

    public function stream_lock(int $operation): bool
    {
        return $this->inner !== null && \flock($this->inner, $operation);
    }

    public function stream_set_option(int $option, int $arg1, ?int $arg2): bool
    {
        if ($this->inner === null) {
            return false;
        }
        return match ($option) {
            \STREAM_OPTION_BLOCKING => \stream_set_blocking($this->inner, (bool)$arg1),
            \STREAM_OPTION_READ_TIMEOUT => \stream_set_timeout($this->inner, $arg1, (int)$arg2),
            \STREAM_OPTION_WRITE_BUFFER => \stream_set_write_buffer($this->inner, (int)$arg2) === 0,
            \STREAM_OPTION_READ_BUFFER => \stream_set_read_buffer($this->inner, (int)$arg2) === 0,
            default => false,
        };
    }

    /**
     * For stream_select() on proxied streams (php://stdin).
     *
     * @return resource|false
     */
    public function stream_cast(int $castAs)
    {
        return $this->inner ?? false;
    }

    public function stream_close(): void
    {
        if ($this->ownsInner && \is_resource($this->inner)) {
            \fclose($this->inner);
        }
        $this->inner = null;
        $this->buffer = '';
    }

    /**
     * php:// paths have nothing to stat (file_exists() is false, as with PHP's wrapper).
     */
    public function url_stat(string $path, int $flags): array|false
    {
        return false;
    }
}
