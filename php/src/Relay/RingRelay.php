<?php

declare(strict_types=1);

namespace Fastrr\Relay;

use Fastrr\Frame;
use Fastrr\Worker;

/**
 * Frames over fastrr's shared-memory ring (`server.relay: shm`).
 *
 * The server creates one mapping per worker (two byte rings, one per
 * direction) and hands it over through exec: FASTRR_RING=fd:<memfd>,<eventfd>,
 * and FASTRR_RING_LIB names the C library that does the work
 * (fastrr/libfastrr_ring.so, csrc/ring.c). We call it through FFI: one call
 * blocks until a whole frame is there (the worker sleeps in a futex, it does
 * not spin), one call sends a whole frame (streaming through the ring when the
 * frame is larger than the ring).
 *
 * The frames are ordinary goridge frames, so everything above the relay is
 * unchanged. When FFI or the library is not available, {@see self::create()}
 * says why once on stderr and returns null: the worker then uses pipes, and
 * the server notices (the PID handshake answer arrives on the pipe).
 */
final class RingRelay implements RelayInterface
{
    private const CDEF = <<<'C'
        typedef struct fr_ring fr_ring;
        fr_ring *fastrr_ring_open(const char *spec);
        const char *fastrr_ring_open_error(void);
        long long fastrr_ring_recv_frame(fr_ring *r);
        const uint8_t *fastrr_ring_frame(fr_ring *r);
        int fastrr_ring_send(fr_ring *r, const char *p, size_t n);
        size_t fastrr_ring_readable(fr_ring *r);
        const char *fastrr_ring_error(fr_ring *r);
        void fastrr_ring_close(fr_ring *r);
        C;

    private static bool $warned = false;

    /** @var \FFI\CData|null */
    private $ring;

    /**
     * @param \FFI $ffi  the library, loaded with self::CDEF
     * @param \FFI\CData $ring an open fr_ring handle
     */
    private function __construct(private readonly \FFI $ffi, \FFI\CData $ring)
    {
        $this->ring = $ring;
    }

    /**
     * The relay the server prepared for this worker, or null (with one line
     * on stderr saying why) when it cannot be used here.
     */
    public static function create(?string $spec = null, ?string $library = null): ?self
    {
        $spec ??= self::env('FASTRR_RING');
        $library ??= self::env('FASTRR_RING_LIB');
        if ($spec === null || $library === null) {
            return self::unavailable('FASTRR_RING / FASTRR_RING_LIB are not set');
        }
        if (!\extension_loaded('ffi') || !\class_exists(\FFI::class)) {
            return self::unavailable('the PHP FFI extension is not loaded');
        }
        try {
            $ffi = \FFI::cdef(self::CDEF, $library);
        } catch (\Throwable $e) {
            return self::unavailable($e->getMessage());
        }
        $ring = $ffi->fastrr_ring_open($spec);
        if ($ring === null) {
            return self::unavailable((string)$ffi->fastrr_ring_open_error());
        }
        return new self($ffi, $ring);
    }

    public function waitFrame(): Frame
    {
        $n = $this->ffi->fastrr_ring_recv_frame($this->handle());
        if ($n < 0) {
            throw new RelayException((string)$this->ffi->fastrr_ring_error($this->ring));
        }
        $bytes = \FFI::string($this->ffi->fastrr_ring_frame($this->ring), $n);
        // The library checked the version nibble and the CRC.
        $b0 = \ord($bytes[0]);
        return Frame::fromParts(\ord($bytes[1]), ($b0 & 0x0F) - 3, \ord($bytes[10]), (string)\substr($bytes, 12));
    }

    public function send(Frame $frame): void
    {
        $data = Frame::pack($frame->payload, $frame->options, $frame->flags, $frame->byte10);
        if ($this->ffi->fastrr_ring_send($this->handle(), $data, \strlen($data)) !== 0) {
            throw new RelayException((string)$this->ffi->fastrr_ring_error($this->ring));
        }
    }

    public function hasFrame(): bool
    {
        return $this->ffi->fastrr_ring_readable($this->handle()) > 0;
    }

    public function close(): void
    {
        if ($this->ring !== null) {
            $this->ffi->fastrr_ring_close($this->ring);
            $this->ring = null;
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    private function handle(): \FFI\CData
    {
        if ($this->ring === null) {
            throw new RelayException('the shm relay is closed');
        }
        return $this->ring;
    }

    private static function env(string $name): ?string
    {
        $v = $_SERVER[$name] ?? $_ENV[$name] ?? \getenv($name);
        return \is_string($v) && $v !== '' ? $v : null;
    }

    private static function unavailable(string $why): ?self
    {
        if (!self::$warned) {
            self::$warned = true;
            Worker::log('fastrr: shm relay unavailable (' . $why . '); using pipes');
        }
        return null;
    }
}
