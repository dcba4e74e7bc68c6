<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Exception;

if (\interface_exists(\Psr\SimpleCache\CacheException::class)) {
    interface KeyValueExceptionInterface extends \Psr\SimpleCache\CacheException
    {
    }
} else {
    interface KeyValueExceptionInterface extends \Throwable
    {
    }
}
