<?php

declare(strict_types=1);

namespace Fastrr\Lock;

/** Makes the id a lock is taken under when the caller gives none. */
interface LockIdGeneratorInterface
{
    public function generate(): string;
}
