<?php

declare(strict_types=1);

namespace Fastrr\Logger\DTO\V1;

use Fastrr\Jobs\DTO\V1\Message;

/**
 * `applogger.v1.LogEntry { string message = 1; repeated LogAttrs log_attrs = 2; }`:
 * the argument of the `app.*WithContext` methods.
 */
final class LogEntry extends Message
{
    protected const FIELDS = [
        1 => ['message', 'string', ''],
        2 => ['log_attrs', LogAttrs::class, 'repeated'],
    ];

    public string $message = '';

    /** @var list<LogAttrs> */
    public array $logAttrs = [];

    public function getMessage(): string
    {
        return $this->message;
    }

    /** @return list<LogAttrs> */
    public function getLogAttrs(): array
    {
        return $this->logAttrs;
    }
}
