<?php

declare(strict_types=1);

namespace Fastrr\Relay;

use Fastrr\Frame;

/**
 * A bidirectional frame transport between this worker and the server.
 */
interface RelayInterface
{
    /**
     * Blocks until one whole frame has arrived.
     *
     * @throws RelayException on EOF, I/O errors and malformed frames
     */
    public function waitFrame(): Frame;

    /**
     * Writes one whole frame.
     *
     * @throws RelayException on I/O errors
     */
    public function send(Frame $frame): void;

    /**
     * True when a frame (or at least its first byte) can be read without blocking.
     */
    public function hasFrame(): bool;
}
