<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

use Fastrr\GRPC\Exception\GRPCException;
use Google\Protobuf\Internal\Message;

/**
 * One gRPC method of a service object: a public method with exactly two
 * parameters, a context (untyped, mixed, object or a ContextInterface type)
 * and a protobuf message, returning a protobuf message. Anything else on the
 * object is not a gRPC method and is never called.
 */
final class Method
{
    private function __construct(
        public readonly string $name,
        /** @var class-string<Message> */
        public readonly string $inputType,
        /** @var class-string<Message> */
        public readonly string $outputType,
    ) {
    }

    public function getName(): string
    {
        return $this->name;
    }

    public function getInputType(): string
    {
        return $this->inputType;
    }

    public function getOutputType(): string
    {
        return $this->outputType;
    }

    public static function match(\ReflectionMethod $method): bool
    {
        return self::problem($method) === null;
    }

    /** @throws GRPCException INTERNAL when the signature is not a gRPC method's */
    public static function parse(\ReflectionMethod $method): self
    {
        $problem = self::problem($method);
        if ($problem !== null) {
            throw GRPCException::create("Method {$method->getName()} is not valid GRPC method: {$problem}",
                StatusCode::INTERNAL);
        }
        [, $input] = $method->getParameters();
        /** @var \ReflectionNamedType $in */
        $in = $input->getType();
        /** @var \ReflectionNamedType $out */
        $out = $method->getReturnType();
        return new self($method->getName(), $in->getName(), $out->getName());
    }

    private static function problem(\ReflectionMethod $method): ?string
    {
        if (!$method->isPublic() || $method->isStatic()) {
            return 'it must be a public instance method';
        }
        if ($method->getNumberOfParameters() !== 2) {
            return "it has {$method->getNumberOfParameters()} parameters, a GRPC method has 2 (context, input)";
        }
        [$context, $input] = $method->getParameters();
        $type = $context->getType();
        if ($type !== null) {
            if (!$type instanceof \ReflectionNamedType) {
                return "the context parameter \${$context->getName()} cannot have a union type";
            }
            $name = $type->getName();
            if (!\in_array($name, ['mixed', 'object'], true)
                && ($type->isBuiltin() || !\is_a($name, ContextInterface::class, true))) {
                return "the first parameter \${$context->getName()} must take a " . ContextInterface::class;
            }
        }
        if (!self::isMessageType($input->getType())) {
            return "the second parameter \${$input->getName()} must be typed with a protobuf message class";
        }
        if (!self::isMessageType($method->getReturnType())) {
            return 'the return type must be a protobuf message class';
        }
        return null;
    }

    private static function isMessageType(?\ReflectionType $type): bool
    {
        return $type instanceof \ReflectionNamedType && !$type->isBuiltin()
            && \is_subclass_of($type->getName(), Message::class, true);
    }
}
