<?php

/*
 * Tests of Fastrr\GRPC, loaded by run.php (its harness). Needs Google's
 * protobuf runtime (Debian's php-google-protobuf); without it the tests are
 * skipped with a note. Expected google.rpc.Status bytes were produced by
 * Python's protobuf (fastrr/grpc/status.py's Status), not by the code under test.
 */

declare(strict_types=1);

namespace Fastrr\Tests\Grpc {
    use Fastrr\GRPC\ContextInterface;
    use Fastrr\GRPC\Exception\GRPCException;
    use Fastrr\GRPC\ServiceInterface;
    use Google\Protobuf\StringValue;

    interface GreeterInterface extends ServiceInterface
    {
        public const NAME = 'test.v1.Greeter';

        public function Hello(ContextInterface $ctx, StringValue $in): StringValue;
    }

    interface NamelessInterface extends ServiceInterface
    {
    }

    final class Greeter implements GreeterInterface
    {
        public function Hello(ContextInterface $ctx, StringValue $in): StringValue
        {
            $name = $in->getValue();
            if ($name === 'fail') {
                throw GRPCException::create('bad', 5, null, [new StringValue(['value' => 'x'])]);
            }
            if ($name === 'crash') {
                throw new \LogicException('plain failure');
            }
            $ctx->getValue(\Fastrr\GRPC\ResponseHeaders::class)->set('x-h', 'v');
            // code written for roadrunner-php/grpc names RoadRunner's class
            $ctx->getValue('Spiral\\RoadRunner\\GRPC\\ResponseTrailers')->set('x-t', 'w');
            $agent = $ctx->getValue('user-agent')[0] ?? '';
            return new StringValue(['value' => "hello {$name} from {$agent}"]);
        }

        public function helper(string $x): string  // not a gRPC method: never matched
        {
            return $x;
        }

        public function Other(ContextInterface $ctx, string $in): StringValue  // wrong input type
        {
            return new StringValue();
        }
    }
}

namespace {
    use Fastrr\Frame;
    use Fastrr\GRPC\Context;
    use Fastrr\GRPC\Exception\GRPCException;
    use Fastrr\GRPC\Exception\NotFoundException;
    use Fastrr\GRPC\Exception\ServiceException;
    use Fastrr\GRPC\Internal\Protobuf;
    use Fastrr\GRPC\Internal\Status;
    use Fastrr\GRPC\RoadRunnerNames;
    use Fastrr\GRPC\Server;
    use Fastrr\GRPC\StatusCode;
    use Fastrr\Payload;
    use Fastrr\Relay\StreamRelay;
    use Fastrr\Tests\Grpc\Greeter;
    use Fastrr\Tests\Grpc\GreeterInterface;
    use Fastrr\Tests\Grpc\NamelessInterface;
    use Fastrr\Worker;
    use Google\Protobuf\StringValue;

    Protobuf::autoload();
    $haveProtobuf = class_exists(\Google\Protobuf\Internal\Message::class);

    function grpcCall(string $service, string $method, string $body, array $context = []): Payload
    {
        $header = json_encode(['service' => $service, 'method' => $method, 'context' => (object)$context]);
        return new Payload($body, $header);
    }

    function grpcServer(): Server
    {
        $server = new Server();
        $server->registerService(GreeterInterface::class, new Greeter());
        return $server;
    }

    if (!$haveProtobuf) {
        test('grpc: skipped, php-google-protobuf is not installed', function (): void {
            ok(true);
        });
        return;
    }

    test('grpc: Status bytes are google.rpc.Status as protobuf writes them', function (): void {
        $e = GRPCException::create('bad', StatusCode::NOT_FOUND, null, [new StringValue(['value' => 'x'])]);
        hexEq('080512036261641a360a2f747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e'
            . '537472696e6756616c756512030a0178', Status::encode($e));
        hexEq('08101202c3a9', Status::encode(new GRPCException('é', 16)));
        hexEq('ffffffffffffffffff01', Status::varint(-1), 'negative int32: 10 bytes');
        hexEq('', Status::encode(new GRPCException('', 0)), 'all defaults: empty');
    });

    test('grpc: exceptions carry their class default code, as RoadRunner\'s constructors do', function (): void {
        eq(StatusCode::UNKNOWN, (new GRPCException('x'))->getCode());
        eq(StatusCode::NOT_FOUND, (new NotFoundException('x'))->getCode());
        eq(StatusCode::NOT_FOUND, NotFoundException::create('x')->getCode());
        eq(StatusCode::UNAVAILABLE, (new \Fastrr\GRPC\Exception\InvokeException('x'))->getCode());
        eq(StatusCode::INTERNAL, (new ServiceException('x'))->getCode());
        eq(StatusCode::UNAUTHENTICATED, (new \Fastrr\GRPC\Exception\UnauthenticatedException('x'))->getCode());
        eq(StatusCode::UNIMPLEMENTED, (new \Fastrr\GRPC\Exception\UnimplementedException('x'))->getCode());
        $e = new GRPCException('x', 3);
        $e->addDetails(new StringValue());
        eq(1, count($e->getDetails()));
    });

    test('grpc: a call answers the reply with headers and trailers packed as RoadRunner reads them', function (): void {
        $in = (new StringValue(['value' => 'ann']))->serializeToString();
        $reply = grpcServer()->handle(grpcCall('test.v1.Greeter', 'Hello', $in, ['user-agent' => ['grpc-python']]));
        $out = new StringValue();
        $out->mergeFromString($reply->body);
        eq('hello ann from grpc-python', $out->getValue());
        eq('{"headers":"{\"x-h\":\"v\"}","trailers":"{\"x-t\":\"w\"}"}', $reply->header);
    });

    test('grpc: GRPCException → error context; unknown service/method → NOT_FOUND; others throw', function (): void {
        $server = grpcServer();
        $reply = $server->handle(grpcCall('test.v1.Greeter', 'Hello',
            (new StringValue(['value' => 'fail']))->serializeToString()));
        eq('', $reply->body);
        $ctx = json_decode($reply->header, true);
        eq(['error'], array_keys($ctx));
        eq('080512036261641a360a2f747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e'
            . '537472696e6756616c756512030a0178', bin2hex(base64_decode($ctx['error'])));
        $missing = json_decode($server->handle(grpcCall('test.v1.Nope', 'Hello', ''))->header, true);
        hexEq('0805', substr(base64_decode($missing['error']), 0, 2), 'NOT_FOUND');
        ok(str_contains(base64_decode($missing['error']), 'Service `test.v1.Nope` not found.'));
        $method = json_decode($server->handle(grpcCall('test.v1.Greeter', 'Other', ''))->header, true);
        ok(str_contains(base64_decode($method['error']), 'Method `Other` not found in service `test.v1.Greeter`.'),
            'a method with a wrong signature is not served');
        throws(\LogicException::class, fn () => $server->handle(grpcCall('test.v1.Greeter', 'Hello',
            (new StringValue(['value' => 'crash']))->serializeToString())), 'plain failure');
        $bad = json_decode($server->handle(grpcCall('test.v1.Greeter', 'Hello', "\x0a\x05ab"))->header, true);
        hexEq('080d', substr(base64_decode($bad['error']), 0, 2), 'a body that does not decode: INTERNAL');
    });

    test('grpc: registerService checks NAME and the implementation', function (): void {
        $server = new Server();
        throws(ServiceException::class, fn () => $server->registerService(NamelessInterface::class, new Greeter()),
            'constant `NAME` not found');
        throws(ServiceException::class, fn () => $server->registerService('No\\Such', new Greeter()), 'Invalid');
        $server->registerService(GreeterInterface::class, new Greeter());
        $methods = array_map(fn ($m) => $m->getName(), $server->getServices()['test.v1.Greeter']->getMethods());
        eq(['Hello'], $methods);
    });

    test('grpc: Context is a value; RoadRunner names alias this library', function (): void {
        $ctx = new Context(['a' => ['1']]);
        $two = $ctx->withValue('b', 2);
        eq(null, $ctx->getValue('b'));
        eq(2, $two->getValue('b'));
        eq(['1'], $two['a']);
        eq(2, count($two));
        RoadRunnerNames::register();
        ok(interface_exists('Spiral\\RoadRunner\\GRPC\\ContextInterface'), 'autoloaded as an alias');
        ok(is_a(new Context(), 'Spiral\\RoadRunner\\GRPC\\ContextInterface'), 'alias of ContextInterface');
        eq(StatusCode::INTERNAL, constant('Spiral\\RoadRunner\\GRPC\\StatusCode::INTERNAL'));
    });

    test('grpc: serve() answers frames until the stop frame; a Throwable is an ERROR frame', function (): void {
        $frames = '';
        foreach (['ann', 'crash'] as $name) {
            $p = grpcCall('test.v1.Greeter', 'Hello', (new StringValue(['value' => $name]))->serializeToString());
            $frames .= Frame::pack($p->header . $p->body, [strlen($p->header)], Frame::CODEC_JSON);
        }
        $frames .= Frame::pack('{"stop":true}', [], Frame::CONTROL | Frame::CODEC_JSON);
        $in = fopen('php://memory', 'w+b');
        fwrite($in, $frames);
        rewind($in);
        $out = fopen('php://memory', 'w+b');
        $seen = [];
        grpcServer()->serve(new Worker(new StreamRelay($in, $out)), function (?\Throwable $e = null) use (&$seen): void {
            $seen[] = $e === null ? 'ok' : get_class($e);
        });
        eq(['ok', 'LogicException'], $seen);
        rewind($out);
        $relay = new StreamRelay($out, fopen('php://memory', 'w+b'));
        $first = $relay->waitFrame();
        eq(0, $first->flags & Frame::ERROR);
        ok(str_starts_with($first->payload, '{"headers"'), 'reply context first');
        $second = $relay->waitFrame();
        eq(Frame::ERROR, $second->flags & Frame::ERROR);
        eq('plain failure', $second->payload);
    });
}
