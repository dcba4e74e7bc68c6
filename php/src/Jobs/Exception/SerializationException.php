<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Exception;

/**
 * A task context or reply could not be (de)serialised as JSON.
 */
class SerializationException extends JobsException
{
}
