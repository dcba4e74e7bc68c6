<?php

declare(strict_types=1);

namespace Fastrr\Logger\Exception;

/** A log call failed: the server refused it (its text is the message) or could not be reached. */
class LoggerException extends \RuntimeException
{
}
