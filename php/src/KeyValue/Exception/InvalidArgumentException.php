<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Exception;

if (\interface_exists(\Psr\SimpleCache\InvalidArgumentException::class)) {
    class InvalidArgumentException extends \InvalidArgumentException implements
        \Psr\SimpleCache\InvalidArgumentException, KeyValueExceptionInterface
    {
    }
} else {
    class InvalidArgumentException extends \InvalidArgumentException implements KeyValueExceptionInterface
    {
    }
}
