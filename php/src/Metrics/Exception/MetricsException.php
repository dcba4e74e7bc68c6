<?php

declare(strict_types=1);

namespace Fastrr\Metrics\Exception;

use Fastrr\RPC\Exception\ServiceException;

/**
 * A metrics call failed: the server's error text (undefined collector, wrong
 * label count, ...) or the transport's.
 */
class MetricsException extends ServiceException
{
}
