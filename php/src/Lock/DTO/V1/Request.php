<?php

declare(strict_types=1);

namespace Fastrr\Lock\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message;

/**
 * `lock.v1beta1.Request { string resource = 1; string id = 2; int64 ttl = 3; int64 wait = 4; }`,
 * ttl and wait in microseconds (0: no expiry / try once).
 */
final class Request extends Message
{
    protected const FIELDS = [
        1 => ['resource', 'string', ''],
        2 => ['id', 'string', ''],
        3 => ['ttl', 'int64', ''],
        4 => ['wait', 'int64', ''],
    ];

    public string $resource = '';
    public string $id = '';
    public int $ttl = 0;
    public int $wait = 0;
}
