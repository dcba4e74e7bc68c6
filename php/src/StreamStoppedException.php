<?php

declare(strict_types=1);

namespace Fastrr;

/**
 * Thrown into a response generator when the server cancels the stream
 * (the client went away). Catch it inside the generator to clean up.
 */
class StreamStoppedException extends \RuntimeException
{
    public function __construct(string $message = 'the server stopped the response stream', int $code = 0, ?\Throwable $previous = null)
    {
        parent::__construct($message, $code, $previous);
    }
}
