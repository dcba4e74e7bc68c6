<?php

declare(strict_types=1);

namespace Fastrr\Relay;

use Fastrr\Frame;

/**
 * Frames over a pair of PHP streams; by default STDIN (server → worker) and
 * STDOUT (worker → server), which is RoadRunner's "pipes" relay.
 *
 * PHP's read buffer usually pulls a whole small frame in with the first
 * 12-byte read, so a request costs one read(2) and one write(2).
 */
class StreamRelay implements RelayInterface
{
    /** Upper bound for one read call on a large payload, so we never allocate the whole size twice. */
    private const READ_CHUNK = 1 << 20;

    /** @var resource */
    protected $in;

    /** @var resource */
    protected $out;

    /**
     * @param resource|null $in  readable stream, STDIN when null
     * @param resource|null $out writable stream, STDOUT when null
     */
    public function __construct($in = null, $out = null)
    {
        $in ??= \defined('STDIN') ? \STDIN : \fopen('php://stdin', 'rb');
        $out ??= \defined('STDOUT') ? \STDOUT : \fopen('php://stdout', 'wb');
        if (!\is_resource($in) || !\is_resource($out)) {
            throw new \InvalidArgumentException('StreamRelay needs two open stream resources');
        }
        $this->in = $in;
        $this->out = $out;
    }

    public function waitFrame(): Frame
    {
        [$flags, $len, $nopt, $byte10] = Frame::parseHeader($this->read(Frame::HEADER_SIZE));
        $rest = $len + $nopt * 4;
        return Frame::fromParts($flags, $nopt, $byte10, $rest === 0 ? '' : $this->read($rest));
    }

    public function send(Frame $frame): void
    {
        $this->write(Frame::pack($frame->payload, $frame->options, $frame->flags, $frame->byte10));
    }

    public function hasFrame(): bool
    {
        $read = [$this->in];
        $write = $except = null;
        // stream_select() also reports streams that have bytes in PHP's own read buffer.
        return @\stream_select($read, $write, $except, 0, 0) > 0;
    }

    /**
     * Reads exactly $n bytes, looping over short reads.
     */
    protected function read(int $n): string
    {
        $data = \fread($this->in, $n);
        if ($data !== false && \strlen($data) === $n) {
            return $data;
        }
        $parts = [];
        $got = 0;
        if ($data !== false && $data !== '') {
            $parts[] = $data;
            $got = \strlen($data);
        }
        $idle = 0;
        while ($got < $n) {
            $chunk = \fread($this->in, \min($n - $got, self::READ_CHUNK));
            if ($chunk === false || $chunk === '') {
                if (\feof($this->in)) {
                    throw new RelayException(\sprintf(
                        'relay closed by the server (EOF after %d of %d bytes)',
                        $got,
                        $n,
                    ));
                }
                // An interrupted read(2) or a socket read timeout: just try again,
                // but do not spin forever on a stream that keeps failing.
                if (++$idle > 1000) {
                    throw new RelayException(\sprintf('relay read keeps failing (%d of %d bytes)', $got, $n));
                }
                continue;
            }
            $idle = 0;
            $parts[] = $chunk;
            $got += \strlen($chunk);
        }
        return \implode('', $parts);
    }

    /**
     * Writes all of $data, looping over short writes.
     */
    protected function write(string $data): void
    {
        $n = \fwrite($this->out, $data);
        if ($n === \strlen($data)) {
            return;
        }
        $idle = 0;
        $total = \strlen($data);
        $done = $n === false ? 0 : $n;
        while ($done < $total) {
            $n = @\fwrite($this->out, \substr($data, $done));
            if ($n === false || $n === 0) {
                if (++$idle > 1000) {
                    throw new RelayException(\sprintf('relay write failed after %d of %d bytes', $done, $total));
                }
                continue;
            }
            $idle = 0;
            $done += $n;
        }
    }
}
