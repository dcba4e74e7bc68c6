<?php

declare(strict_types=1);

namespace Fastrr\Relay;

/**
 * Frames over a TCP or unix-domain socket that the server listens on.
 *
 * The server starts the PID handshake as soon as it accepts the connection, so
 * the worker must connect from its own process (not through a wrapper shell).
 */
final class SocketRelay extends StreamRelay
{
    /** How long to keep retrying the connect (the server may still be binding). */
    public const CONNECT_TIMEOUT = 5.0;

    private const RETRY_INTERVAL_US = 100_000;

    /**
     * @param string $address `tcp://host:port` or `unix:///path/to.sock`
     */
    public function __construct(private readonly string $address, float $connectTimeout = self::CONNECT_TIMEOUT)
    {
        $socket = self::connect($address, $connectTimeout);
        parent::__construct($socket, $socket);
    }

    public function getAddress(): string
    {
        return $this->address;
    }

    public function __destruct()
    {
        if (\is_resource($this->in)) {
            \fclose($this->in);
        }
    }

    /**
     * @return resource
     */
    private static function connect(string $address, float $timeout)
    {
        $isTcp = \str_starts_with($address, 'tcp://');
        $context = \stream_context_create($isTcp ? ['socket' => ['tcp_nodelay' => true]] : []);
        $deadline = \microtime(true) + $timeout;
        $errno = 0;
        $errstr = '';
        while (true) {
            $socket = @\stream_socket_client($address, $errno, $errstr, $timeout, \STREAM_CLIENT_CONNECT, $context);
            if ($socket !== false) {
                break;
            }
            if (\microtime(true) >= $deadline) {
                throw new RelayException(\sprintf(
                    'cannot connect to relay %s within %.1fs: %s (%d)',
                    $address,
                    $timeout,
                    $errstr !== '' ? $errstr : 'unknown error',
                    $errno,
                ));
            }
            \usleep(self::RETRY_INTERVAL_US);
        }
        \stream_set_blocking($socket, true);
        // A worker may idle for a long time between requests: reads must not time
        // out after default_socket_timeout. tv_sec = -1 means "wait forever".
        \stream_set_timeout($socket, -1);
        return $socket;
    }
}
