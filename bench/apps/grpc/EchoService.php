<?php
// The test service, written against roadrunner-php/grpc's names only: what
// each rpc does is in bench/apps/grpc/protos/echo.proto.

declare(strict_types=1);

namespace Test\Grpc;

use Google\Protobuf\Any;
use Spiral\RoadRunner\GRPC;
use Spiral\RoadRunner\GRPC\Exception\GRPCException;
use Spiral\RoadRunner\GRPC\ResponseHeaders;
use Spiral\RoadRunner\GRPC\ResponseTrailers;

final class EchoService implements EchoInterface
{
    public function Ping(GRPC\ContextInterface $ctx, Message $in): Message
    {
        $echo = $ctx->getValue('x-echo');
        if (\is_array($echo) && $echo !== []) {
            $ctx->getValue(ResponseHeaders::class)->set('x-echo-header', \implode(',', $echo));
            $ctx->getValue(ResponseTrailers::class)->set('x-echo-trailer', \implode(',', $echo));
        }
        $out = new Message();
        $out->setMsg($in->getMsg());
        $out->setBlob($in->getBlob());
        // what the worker was told about the call, for the test to check
        $peer = $ctx->getValue(':peer.address');
        $auth = $ctx->getValue(':peer.auth-type');
        $out->setCode(\is_array($peer) && \str_starts_with($peer[0], '127.0.0.1:') ? 1 : 0);
        $out->setSize(\is_array($auth) && $auth === ['tls'] ? 1 : 0);
        return $out;
    }

    public function Fail(GRPC\ContextInterface $ctx, Message $in): Message
    {
        $ctx->getValue(ResponseTrailers::class)->set('x-failed', 'yes');
        $detail = new Message();
        $detail->setMsg('detail of ' . $in->getMsg());
        throw GRPCException::create($in->getMsg(), $in->getCode(), null, [$detail]);
    }

    public function Error(GRPC\ContextInterface $ctx, Message $in): Message
    {
        throw new \RuntimeException($in->getMsg());
    }

    public function Sleep(GRPC\ContextInterface $ctx, Message $in): Message
    {
        \usleep((int)$in->getSleepMs() * 1000);
        $out = new Message();
        $out->setMsg('slept ' . $in->getSleepMs() . ' pid ' . \getmypid());
        return $out;
    }

    public function Crash(GRPC\ContextInterface $ctx, Message $in): Message
    {
        exit(7);
    }

    public function Big(GRPC\ContextInterface $ctx, Message $in): Message
    {
        $out = new Message();
        $out->setBlob(\str_repeat('b', (int)$in->getSize()));
        return $out;
    }

    public function Mirror(GRPC\ContextInterface $ctx, Rich $in): Rich
    {
        $out = new Rich();
        $out->mergeFromString($in->serializeToString());
        return $out;
    }

    public function Make(GRPC\ContextInterface $ctx, Message $in): Rich
    {
        // The same values as RICH_VALUES in tests/grpc/test_differential.py.
        $inner = new Message();
        $inner->setMsg('inner');
        $inner->setSleepMs(-5);
        $item = new Message();
        $item->setBlob("\x00\xff");
        $rich = new Rich();
        $rich->setI32(-7);
        $rich->setI64(-9000000000);
        $rich->setU32(4000000000);
        $rich->setU64(PHP_INT_MAX);
        $rich->setS32(-300);
        $rich->setS64(-70000000000);
        $rich->setF32(123456);
        $rich->setF64(1234567890123);
        $rich->setSf32(-42);
        $rich->setSf64(-4242424242);
        $rich->setFlag(true);
        $rich->setFl(1.5);
        $rich->setDb(-2.25e100);
        $rich->setText("héllo ✓ \u{1F600}");
        $rich->setRaw("\x00\x01\xfe\xff");
        $rich->setPacked([1, -1, 300, 0]);
        $rich->setNames(['a', '', 'ß']);
        $rich->setInner($inner);
        $rich->setCounts(['k' => -1]);
        $rich->setColor(Color::BLUE);
        $rich->setNumber(0);
        $rich->setItems([$item, new Message()]);
        return $rich;
    }

    public function Watch(GRPC\ContextInterface $ctx, Message $in): Message
    {
        $out = new Message();
        $out->setMsg('one of ' . $in->getMsg());
        return $out;
    }

    public function Pack(GRPC\ContextInterface $ctx, Any $in): Message
    {
        $out = new Message();
        $out->setMsg($in->getTypeUrl());
        $out->setBlob($in->getValue());
        return $out;
    }
}
