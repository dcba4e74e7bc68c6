<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

use Fastrr\GRPC\Exception\InvokeException;
use Google\Protobuf\Internal\Message;

/**
 * Decodes the request into the method's input class (mergeFromString), calls
 * the method and encodes what it returns (serializeToString). A body that
 * does not decode, or a reply that does not encode, is INTERNAL.
 */
final class Invoker implements InvokerInterface
{
    public function invoke(ServiceInterface $service, Method $method, ContextInterface $ctx, ?string $input): string
    {
        $class = $method->inputType;
        try {
            /** @var Message $in */
            $in = new $class();
            if ($input !== null && $input !== '') {
                $in->mergeFromString($input);
            }
        } catch (\Throwable $e) {
            throw InvokeException::create($e->getMessage(), StatusCode::INTERNAL, $e);
        }
        $out = $service->{$method->name}($ctx, $in);
        if (!$out instanceof Message) {
            throw new \BadFunctionCallException(\sprintf('Method %s must return an instance of %s, got %s',
                $method->name, Message::class, \get_debug_type($out)));
        }
        try {
            return $out->serializeToString();
        } catch (\Throwable $e) {
            throw InvokeException::create($e->getMessage(), StatusCode::INTERNAL, $e);
        }
    }
}
