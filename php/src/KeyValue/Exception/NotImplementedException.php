<?php

declare(strict_types=1);

namespace Fastrr\KeyValue\Exception;

/** The storage cannot do this (e.g. TTL read-back on memcached). */
class NotImplementedException extends KeyValueException
{
}
