<?php

declare(strict_types=1);

namespace App\Service;

use Symfony\Component\HttpFoundation\RequestStack;
use Symfony\Contracts\Service\ResetInterface;

/**
 * Per-request state a long-lived worker must not carry over: the entries one request records.
 * It also counts its resets (services_resetter calls reset() between requests) and notes whether
 * the request stack was empty when the reset ran, so tests can see both from the next request.
 */
final class RequestLedger implements ResetInterface
{
    /** @var list<string> what the current request recorded; empty again after a reset */
    private array $entries = [];

    private int $resets = 0;

    private ?bool $stackEmptyAtReset = null;

    public function __construct(private readonly RequestStack $requestStack)
    {
    }

    public function record(string $entry): int
    {
        $before = \count($this->entries);
        $this->entries[] = $entry;
        return $before;
    }

    public function reset(): void
    {
        $this->entries = [];
        ++$this->resets;
        $this->stackEmptyAtReset = $this->requestStack->getCurrentRequest() === null;
    }

    public function resets(): int
    {
        return $this->resets;
    }

    public function stackEmptyAtReset(): ?bool
    {
        return $this->stackEmptyAtReset;
    }
}
