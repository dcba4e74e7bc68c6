<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.HeaderValue { repeated string value = 1; }`: one header's values.
 */
final class HeaderValue extends Message
{
    protected const FIELDS = [1 => ['value', 'string', 'repeated']];

    /** @var list<string> */
    public array $value = [];

    /**
     * @param array<string, mixed>|list<string> $data ['value' => [...]], or the list of values itself
     */
    public function __construct(array $data = [])
    {
        parent::__construct(\array_is_list($data) ? ['value' => $data] : $data);
    }

    /** @return list<string> */
    public function getValue(): array
    {
        return $this->value;
    }
}
