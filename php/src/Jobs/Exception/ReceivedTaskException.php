<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Exception;

/**
 * The server delivered a task this library cannot read (no context, no id or name).
 */
class ReceivedTaskException extends JobsException
{
}
