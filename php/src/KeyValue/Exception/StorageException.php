<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Exception;

/** The storage is not defined in the server's `kv` section. */
class StorageException extends KeyValueException
{
}
