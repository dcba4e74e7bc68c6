<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * A pipeline to declare: name, driver and priority; the driver classes add
 * their own keys (MemoryCreateInfo, BoltdbCreateInfo).
 */
class CreateInfo implements CreateInfoInterface
{
    public const PRIORITY_DEFAULT_VALUE = 10;

    public function __construct(
        public readonly Driver $driver,
        public readonly string $name,
        public readonly int $priority = self::PRIORITY_DEFAULT_VALUE,
    ) {
        if ($name === '') {
            throw new \InvalidArgumentException('a pipeline name must not be empty');
        }
        if ($priority < 1) {
            throw new \InvalidArgumentException(\sprintf('priority must be >= 1, got %d', $priority));
        }
    }

    public function getName(): string
    {
        return $this->name;
    }

    public function getDriver(): Driver
    {
        return $this->driver;
    }

    /** @return array<string, mixed> */
    public function toArray(): array
    {
        return ['name' => $this->name, 'driver' => $this->driver->value, 'priority' => $this->priority];
    }

    /** @return array<string, mixed> */
    public function jsonSerialize(): array
    {
        return $this->toArray();
    }
}
