<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Task;

use Fastrr\Jobs\OptionsInterface;

interface PreparedTaskInterface extends
    TaskInterface,
    OptionsInterface,
    WritableHeadersInterface,
    MutatesDelayInterface
{
}
