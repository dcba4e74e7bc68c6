<?php

declare(strict_types=1);

namespace Fastrr\GRPC\Exception;

use Fastrr\GRPC\StatusCode;
use Google\Protobuf\Internal\Message;

/**
 * Throw it (or a subclass) from a service method to answer with a status:
 *
 *     throw GRPCException::create('no such user', StatusCode::NOT_FOUND, null, [$errorInfo]);
 *
 * Each subclass has its default code in CODE; this one UNKNOWN.
 */
class GRPCException extends \RuntimeException implements MutableGRPCExceptionInterface
{
    protected const CODE = StatusCode::UNKNOWN;

    /** @param list<Message> $details */
    final public function __construct(
        string $message = '',
        ?int $code = null,
        private array $details = [],
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, $code ?? static::CODE, $previous);
    }

    /** @param list<Message> $details */
    public static function create(
        string $message,
        ?int $code = null,
        ?\Throwable $previous = null,
        array $details = [],
    ): static {
        return new static($message, $code, $details, $previous);
    }

    public function getDetails(): array
    {
        return $this->details;
    }

    public function setDetails(array $details): void
    {
        $this->details = $details;
    }

    public function addDetails(Message $message): void
    {
        $this->details[] = $message;
    }
}
