<?php
// The service interface of bench/apps/grpc/protos/echo.proto, written by hand the
// way roadrunner-server/grpc's protoc-gen-php-grpc generates one (that plugin
// is not installable here): RoadRunner's namespace, NAME = "<package>.<Service>",
// one method per rpc (but Missing, as if generated before that rpc was
// added to the proto: the PHP side answers NOT_FOUND). The library maps Spiral\RoadRunner\GRPC onto Fastrr\GRPC
// (Fastrr\GRPC\RoadRunnerNames), so this file is what a RoadRunner project has.

declare(strict_types=1);

namespace Test\Grpc;

use Google\Protobuf\Any;
use Spiral\RoadRunner\GRPC;

interface EchoInterface extends GRPC\ServiceInterface
{
    // GRPC specific service name.
    public const NAME = "fastrr.test.Echo";

    /**
    * @param GRPC\ContextInterface $ctx
    * @param Message $in
    * @return Message
    *
    * @throws GRPC\Exception\InvokeException
    */
    public function Ping(GRPC\ContextInterface $ctx, Message $in): Message;

    /** @throws GRPC\Exception\InvokeException */
    public function Fail(GRPC\ContextInterface $ctx, Message $in): Message;

    /** @throws GRPC\Exception\InvokeException */
    public function Error(GRPC\ContextInterface $ctx, Message $in): Message;

    /** @throws GRPC\Exception\InvokeException */
    public function Sleep(GRPC\ContextInterface $ctx, Message $in): Message;

    /** @throws GRPC\Exception\InvokeException */
    public function Crash(GRPC\ContextInterface $ctx, Message $in): Message;

    /** @throws GRPC\Exception\InvokeException */
    public function Big(GRPC\ContextInterface $ctx, Message $in): Message;

    /** @throws GRPC\Exception\InvokeException */
    public function Mirror(GRPC\ContextInterface $ctx, Rich $in): Rich;

    /** @throws GRPC\Exception\InvokeException */
    public function Make(GRPC\ContextInterface $ctx, Message $in): Rich;

    /** @throws GRPC\Exception\InvokeException */
    public function Watch(GRPC\ContextInterface $ctx, Message $in): Message;

    /** @throws GRPC\Exception\InvokeException */
    public function Pack(GRPC\ContextInterface $ctx, Any $in): Message;
}
