<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Exception;

/** A kv call failed (the message carries the server's text). PSR-16's CacheException when available. */
class KeyValueException extends \RuntimeException implements KeyValueExceptionInterface
{
}
