<?php

declare(strict_types=1);

namespace Fastrr\Jobs\DTO\V1;

/**
 * `jobs.v1.Empty {}`. `Empty` is a reserved word in PHP, so the class has
 * protoc's PHP name for it, as in `RoadRunner\Jobs\DTO\V1\PBEmpty`.
 */
final class PBEmpty extends Message
{
}
