<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

use Fastrr\GRPC\Exception\GRPCExceptionInterface;
use Fastrr\GRPC\Exception\NotFoundException;
use Fastrr\GRPC\Exception\ServiceException;
use Fastrr\GRPC\Internal\Protobuf;
use Fastrr\GRPC\Internal\Status;
use Fastrr\Payload;
use Fastrr\Worker;

/**
 * Serves gRPC services on an `RR_MODE=grpc` worker (fastrr's or RoadRunner's
 * grpc plugin: the frames are the same), the contract of
 * Spiral\RoadRunner\GRPC\Server:
 *
 *     $server = new Server();
 *     $server->registerService(EchoInterface::class, new EchoService());
 *     $server->serve();
 *
 * Each request's context is `{"service","method","context"}` and its body the
 * request message. The reply is, in the shape RoadRunner's plugin reads since
 * 2024-09 (older plugins take it too, as headers):
 * - success: the reply message, context `{}` or
 *   `{"headers":"<json>","trailers":"<json>"}` from ResponseHeaders /
 *   ResponseTrailers in the context;
 * - a GRPCExceptionInterface: empty body, context `{"error":"<base64
 *   google.rpc.Status>"}` (code, message, details packed in Any), plus the
 *   headers and trailers set so far;
 * - any other Throwable: an ERROR frame with its message (the whole
 *   exception with `['debug' => true]`), which the server turns into INTERNAL.
 */
final class Server
{
    /** @var array<string, ServiceWrapper> */
    private array $services = [];

    /** @param array{debug?: bool|string} $options */
    public function __construct(
        private readonly InvokerInterface $invoker = new Invoker(),
        private readonly array $options = [],
    ) {
        Protobuf::autoload();
    }

    /**
     * @param class-string $interface the generated service interface (its NAME is the proto service)
     * @throws ServiceException when `$service` does not implement it, or it has no NAME
     */
    public function registerService(string $interface, ServiceInterface $service): void
    {
        $wrapper = new ServiceWrapper($this->invoker, $interface, $service);
        $this->services[$wrapper->getName()] = $wrapper;
    }

    /** @return array<string, ServiceWrapper> */
    public function getServices(): array
    {
        return $this->services;
    }

    /**
     * Answer calls until the server asks this worker to stop.
     *
     * @param ?callable $finalize called after every call, with the Throwable when it failed
     */
    public function serve(?Worker $worker = null, ?callable $finalize = null): void
    {
        $worker ??= Worker::create();
        while (($request = $worker->waitPayload()) !== null) {
            $error = null;
            try {
                $worker->respond($this->handle($request));
            } catch (\Throwable $error) {
                $worker->error($this->debug() ? (string)$error : $error->getMessage());
            } finally {
                if ($finalize !== null) {
                    $error !== null ? $finalize($error) : $finalize();
                }
            }
        }
    }

    /**
     * One call: the reply payload, or a Throwable that is not a gRPC status.
     * Public for tests and for loops of one's own.
     */
    public function handle(Payload $request): Payload
    {
        $call = \json_decode($request->header, true, 512, \JSON_THROW_ON_ERROR);
        if (!\is_array($call) || !\is_string($call['service'] ?? null) || !\is_string($call['method'] ?? null)) {
            throw new \UnexpectedValueException('the call context has no service and method');
        }
        $headers = new ResponseHeaders();
        $trailers = new ResponseTrailers();
        $values = \is_array($call['context'] ?? null) ? $call['context'] : [];
        $context = new Context($values + [ResponseHeaders::class => $headers, ResponseTrailers::class => $trailers]);
        try {
            $body = $this->invoke($call['service'], $call['method'], $context, $request->body);
            $reply = [];
        } catch (GRPCExceptionInterface $e) {
            $body = '';
            $reply = ['error' => \base64_encode(Status::encode($e))];
        }
        if (\count($headers) > 0) {
            $reply['headers'] = $headers->packHeaders();
        }
        if (\count($trailers) > 0) {
            $reply['trailers'] = $trailers->packTrailers();
        }
        return new Payload($body, $reply === [] ? '{}' : \json_encode($reply, \JSON_THROW_ON_ERROR));
    }

    private function invoke(string $service, string $method, ContextInterface $context, string $body): string
    {
        $wrapper = $this->services[$service] ?? null;
        if ($wrapper === null) {
            throw NotFoundException::create("Service `{$service}` not found.", StatusCode::NOT_FOUND);
        }
        return $wrapper->invoke($method, $context, $body);
    }

    private function debug(): bool
    {
        return \filter_var($this->options['debug'] ?? false, \FILTER_VALIDATE_BOOLEAN);
    }
}
