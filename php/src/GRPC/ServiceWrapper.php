<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

use Fastrr\GRPC\Exception\NotFoundException;
use Fastrr\GRPC\Exception\ServiceException;

/**
 * A registered service: its proto name (the interface's NAME constant) and
 * the gRPC methods of the object, matched by their exact PHP name, which is
 * the rpc name in the proto.
 */
final class ServiceWrapper
{
    private string $name;
    /** @var array<string, Method> */
    private array $methods = [];

    /** @param class-string $interface */
    public function __construct(
        private readonly InvokerInterface $invoker,
        string $interface,
        private readonly ServiceInterface $service,
    ) {
        if (!\interface_exists($interface) && !\class_exists($interface)) {
            throw ServiceException::create("Invalid service interface `{$interface}`.");
        }
        $reflection = new \ReflectionClass($interface);
        if (!$reflection->hasConstant('NAME')) {
            throw ServiceException::create("Invalid service interface `{$interface}`, constant `NAME` not found.");
        }
        $name = $reflection->getConstant('NAME');
        if (!\is_string($name) || $name === '') {
            throw ServiceException::create("Constant `NAME` of service interface `{$interface}` must be a string");
        }
        if (!$service instanceof $interface) {
            throw ServiceException::create("Service handler does not implement `{$interface}`.");
        }
        $this->name = $name;
        foreach ((new \ReflectionObject($service))->getMethods(\ReflectionMethod::IS_PUBLIC) as $method) {
            if (Method::match($method)) {
                $this->methods[$method->getName()] = Method::parse($method);
            }
        }
    }

    public function getName(): string
    {
        return $this->name;
    }

    public function getService(): ServiceInterface
    {
        return $this->service;
    }

    /** @return list<Method> */
    public function getMethods(): array
    {
        return \array_values($this->methods);
    }

    public function invoke(string $method, ContextInterface $context, ?string $input): string
    {
        $found = $this->methods[$method] ?? null;
        if ($found === null) {
            throw NotFoundException::create("Method `{$method}` not found in service `{$this->name}`.");
        }
        return $this->invoker->invoke($this->service, $found, $context, $input);
    }
}
