<?php

declare(strict_types=1);

namespace Fastrr;

use Fastrr\Debug\StateWatch;
use Fastrr\Relay\Relay;
use Fastrr\Relay\RelayInterface;

/**
 * The worker end of the protocol: receives payloads, sends answers.
 *
 * Rules of this class:
 * - Every data payload gets exactly one final answer: respond() with eos, error(),
 *   or stop(). A second answer would be read by the server as the answer to the
 *   *next* request, so respond()/error() after a final answer are dropped with a
 *   warning on stderr.
 * - CONTROL frames (PID handshake, graceful stop) are handled inside waitPayload().
 * - Stream signals (PONG, STOP) are consumed while a streamed response is going
 *   out; a late one that shows up in waitPayload() is ignored.
 */
final class Worker
{
    /** A PING goes out on every N-th stream chunk; we then wait for the PONG. */
    public const PING_EVERY = 5;

    /** The exact context of a "restart me and retry the request" answer. */
    public const STOP_CONTEXT = '{"stop":true}';

    /** @var list<Frame> frames that arrived while we were looking for stream signals */
    private array $pending = [];

    /** Stream chunks sent for the current response. */
    private int $chunks = 0;

    /** The server sent STOP for the current stream. */
    private bool $streamStopped = false;

    /** The current request already got its final answer. */
    private bool $answered = false;

    /** @var resource|null */
    private static $stderr = null;

    /** @var array<string, scalar> fastrr's own keys sent with the PID handshake answer */
    private array $handshake = [];

    /**
     * The state-leak detector (pool.debug_state: the pool sets FASTRR_DEBUG_STATE=1).
     * Null when off: its class is then never loaded and a request costs one null test.
     */
    private ?StateWatch $stateWatch = null;

    public function __construct(
        private readonly RelayInterface $relay,
        bool $interceptSideEffects = true,
    ) {
        if ($interceptSideEffects) {
            $this->interceptOutput();
        }
        // (the literal, not StateWatch::ENV: a class constant would load the class)
        $debugState = \getenv('FASTRR_DEBUG_STATE');
        if ($debugState !== false && $debugState !== '' && $debugState !== '0') {
            $this->stateWatch = StateWatch::fromEnvironment();
        }
    }

    /**
     * A worker on the relay named by RR_RELAY (default: pipes).
     */
    public static function create(bool $interceptSideEffects = true): self
    {
        $dsn = $_SERVER['RR_RELAY'] ?? $_ENV['RR_RELAY'] ?? \getenv('RR_RELAY');
        if (!\is_string($dsn) || $dsn === '') {
            $dsn = Relay::PIPES;
        }
        return new self(Relay::create($dsn), $interceptSideEffects);
    }

    /**
     * A key sent to the server beside the PID in the handshake answer, before the first request
     * (a RoadRunner server ignores it). fastrr reads `raw_forms`: true asks for urlencoded bodies
     * as sent, and multipart ones parsed only for POST, as PHP's own SAPIs do (SuperglobalsWorker).
     */
    public function setHandshakeOption(string $name, bool|int|string $value): void
    {
        $this->handshake[$name] = $value;
    }

    public function getRelay(): RelayInterface
    {
        return $this->relay;
    }

    /**
     * Waits for the next request payload.
     *
     * Returns null when the server asks this worker to stop; the caller should
     * then leave its loop and let the process exit.
     *
     * @throws Relay\RelayException when the server closed the relay
     * @throws WorkerException on a control frame we do not understand
     */
    public function waitPayload(): ?Payload
    {
        // The one place every worker loop (HTTP, jobs, ...) passes between two requests:
        // the first call is after boot, each later one after a request was answered.
        $this->stateWatch?->check();
        while (true) {
            $frame = $this->pending === [] ? $this->relay->waitFrame() : \array_shift($this->pending);

            if ($frame->flags & Frame::CONTROL) {
                if ($this->handleControl($frame)) {
                    continue;
                }
                return null;
            }

            if ($frame->options === []) {
                if ($frame->byte10 & (Frame::PONG | Frame::STOP)) {
                    // A PONG or STOP that arrived after its stream had ended.
                    continue;
                }
                $header = '';
                $body = $frame->payload;
            } else {
                $ctxLen = $frame->options[0];
                $header = (string)\substr($frame->payload, 0, $ctxLen);
                $body = (string)\substr($frame->payload, $ctxLen);
            }

            $this->answered = false;
            $this->streamStopped = false;
            $this->chunks = 0;
            return new Payload($body, $header);
        }
    }

    /**
     * Sends an answer. With $payload->eos === false the frame is a stream chunk
     * (STREAM bit) and more must follow; the last frame has eos === true.
     *
     * @param int $codec frame flags describing the context encoding (Frame::CODEC_*), 0 for none
     */
    public function respond(Payload $payload, int $codec = 0): void
    {
        if ($this->answered) {
            self::log('fastrr: dropped a response sent after the request was already answered');
            return;
        }
        $header = $payload->header;
        if ($payload->eos) {
            $this->answered = true;
            $this->chunks = 0;
            $this->relay->send(new Frame($header . $payload->body, [\strlen($header)], $codec));
            return;
        }

        $byte10 = Frame::STREAM;
        $ping = ++$this->chunks % self::PING_EVERY === 0;
        if ($ping) {
            $byte10 |= Frame::PING;
        }
        $this->relay->send(new Frame($header . $payload->body, [\strlen($header)], $codec, $byte10));
        if ($ping) {
            $this->waitPong();
        }
    }

    /**
     * Fails the current request without killing the worker (a "soft" error).
     * The server answers the client with its internal error code.
     */
    public function error(string $message): void
    {
        if ($this->answered) {
            self::log('fastrr: dropped an error sent after the request was already answered: ' . $message);
            return;
        }
        $this->answered = true;
        $this->chunks = 0;
        $this->relay->send(new Frame($message, [], Frame::ERROR));
    }

    /**
     * Asks the server to replace this worker. Sent as the answer to the current
     * request, the server retries that request on another worker. Leave the loop
     * afterwards.
     */
    public function stop(): void
    {
        $this->answered = true;
        $this->relay->send(new Frame(self::STOP_CONTEXT, [\strlen(self::STOP_CONTEXT)], 0));
    }

    /**
     * True once the server has cancelled the stream being sent. Non-blocking:
     * reads only the frames that have already arrived.
     */
    public function isStreamStopped(): bool
    {
        if ($this->streamStopped) {
            return true;
        }
        while ($this->relay->hasFrame()) {
            $this->takeStreamSignal($this->relay->waitFrame());
            if ($this->streamStopped) {
                return true;
            }
        }
        return false;
    }

    /**
     * Blocks until the PONG for the PING we just sent. A STOP ends the wait too
     * (the server may not answer pings of a cancelled stream).
     */
    private function waitPong(): void
    {
        while (!$this->streamStopped) {
            $frame = $this->relay->waitFrame();
            if (($frame->byte10 & Frame::PONG) !== 0 && ($frame->flags & Frame::CONTROL) === 0) {
                return;
            }
            $this->takeStreamSignal($frame);
        }
    }

    private function takeStreamSignal(Frame $frame): void
    {
        if (!($frame->flags & Frame::CONTROL) && $frame->options === []) {
            if ($frame->byte10 & Frame::STOP) {
                $this->streamStopped = true;
                return;
            }
            if ($frame->byte10 & Frame::PONG) {
                return;
            }
        }
        // Not a stream signal: keep it for waitPayload().
        $this->pending[] = $frame;
    }

    /**
     * @return bool true to keep waiting, false when the server asked us to stop
     */
    private function handleControl(Frame $frame): bool
    {
        $cmd = \json_decode($frame->payload, true);
        if (!\is_array($cmd)) {
            throw new WorkerException('invalid control frame payload: ' . \substr($frame->payload, 0, 200));
        }
        if (!empty($cmd['pid'])) {
            $answer = \json_encode(['pid' => \getmypid()] + $this->handshake, \JSON_THROW_ON_ERROR);
            $this->relay->send(new Frame($answer, [], Frame::CONTROL));
            return true;
        }
        if (!empty($cmd['stop'])) {
            return false;
        }
        throw new WorkerException('unknown control frame: ' . \substr($frame->payload, 0, 200));
    }

    /**
     * Sends everything the application prints to stderr, so that a stray echo
     * can never corrupt the frame stream on STDOUT.
     */
    private function interceptOutput(): void
    {
        $display = \ini_get('display_errors');
        if ($display !== false && $display !== '' && $display !== '0' && \strtolower($display) !== 'stderr') {
            // Error messages are printed to STDOUT otherwise, outside our buffer
            // when they happen during shutdown.
            \ini_set('display_errors', 'stderr');
        }
        \ob_start(static function (string $buffer): string {
            if ($buffer !== '') {
                self::log($buffer, false);
            }
            return '';
        }, 1);
    }

    /**
     * Where warnings and intercepted output go; STDERR unless set.
     *
     * @param resource|null $stream
     */
    public static function setLogStream($stream): void
    {
        self::$stderr = $stream;
    }

    /**
     * Writes to the worker's stderr, which the server logs.
     *
     * @internal
     */
    public static function log(string $message, bool $newline = true): void
    {
        self::$stderr ??= \defined('STDERR') ? \STDERR : \fopen('php://stderr', 'wb');
        \fwrite(self::$stderr, $newline ? $message . "\n" : $message);
    }
}
