<?php

declare(strict_types=1);

namespace Fastrr\Relay;

/**
 * Builds a relay from the DSN that the server puts in RR_RELAY.
 *
 * Accepted forms:
 *   pipes                  STDIN/STDOUT (the default)
 *   pipes://stdin:stdout   the same, spelled out
 *   tcp://host:port        host must not be empty
 *   unix:///path/to.sock
 *   shm                    fastrr's shared-memory ring (FASTRR_RING), pipes when unavailable;
 *                          with `pipes` too when the server set FASTRR_RING
 */
final class Relay
{
    public const PIPES = 'pipes';

    private function __construct()
    {
    }

    /**
     * @throws \InvalidArgumentException for a DSN we cannot use
     * @throws RelayException when a socket cannot be connected
     */
    public static function create(string $dsn): RelayInterface
    {
        $dsn = \trim($dsn);
        if ($dsn === self::PIPES || $dsn === 'pipes://' || $dsn === 'pipes://stdin:stdout' || $dsn === 'shm') {
            // fastrr's `server.relay: shm` hands over a shared-memory ring (and
            // keeps the pipes as the fallback): use it when FFI can.
            $ring = (\getenv('FASTRR_RING') !== false || $dsn === 'shm') ? RingRelay::create() : null;
            return $ring ?? new StreamRelay();
        }

        $sep = \strpos($dsn, '://');
        if ($sep === false) {
            throw new \InvalidArgumentException(\sprintf(
                'invalid relay DSN "%s": expected pipes, tcp://host:port or unix:///path',
                $dsn,
            ));
        }
        $scheme = \strtolower(\substr($dsn, 0, $sep));
        $target = (string)\substr($dsn, $sep + 3);

        switch ($scheme) {
            case 'tcp':
                $colon = \strrpos($target, ':');
                $host = $colon === false ? '' : \substr($target, 0, $colon);
                $port = $colon === false ? '' : \substr($target, $colon + 1);
                if ($host === '' || $port === '' || !\ctype_digit($port) || (int)$port < 1 || (int)$port > 65535) {
                    throw new \InvalidArgumentException(\sprintf(
                        'invalid tcp relay DSN "%s": expected tcp://host:port with a non-empty host and a port 1-65535',
                        $dsn,
                    ));
                }
                return new SocketRelay('tcp://' . $host . ':' . $port);

            case 'unix':
                if ($target === '') {
                    throw new \InvalidArgumentException(\sprintf(
                        'invalid unix relay DSN "%s": expected unix:///path/to.sock',
                        $dsn,
                    ));
                }
                return new SocketRelay('unix://' . $target);

            case 'pipes':
                throw new \InvalidArgumentException(\sprintf(
                    'invalid pipes relay DSN "%s": only pipes and pipes://stdin:stdout are supported',
                    $dsn,
                ));

            default:
                throw new \InvalidArgumentException(\sprintf(
                    'unsupported relay scheme "%s" in "%s": use pipes, tcp://host:port or unix:///path',
                    $scheme,
                    $dsn,
                ));
        }
    }
}
