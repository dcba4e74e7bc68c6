<?php

declare(strict_types=1);

namespace Fastrr;

/**
 * The server sent something the worker protocol does not allow.
 */
class WorkerException extends \RuntimeException
{
}
