<?php

declare(strict_types=1);

namespace Fastrr\Lock;

/** A lock call failed: the server refused the request (its text is the message) or could not be reached. */
class LockException extends \RuntimeException
{
}
