<?php
// The grpc worker of tests/grpc and `fastrr bench --apps grpc`: fastrr's PHP library, Debian's protobuf
// runtime, the messages protoc generated at test time ($GRPC_GEN), and a
// service written for roadrunner-php/grpc.

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';

use Fastrr\GRPC\RoadRunnerNames;
use Fastrr\GRPC\Server;

$gen = \getenv('GRPC_GEN') ?: '';
\spl_autoload_register(static function (string $class) use ($gen): void {
    if (\str_starts_with($class, 'Test\\Grpc\\')) {
        $rel = \str_replace('\\', '/', \substr($class, 10)) . '.php';
        foreach ([__DIR__ . '/' . $rel, $gen . '/Test/Grpc/' . $rel] as $file) {
            if (\is_file($file)) {
                require $file;
                return;
            }
        }
    }
});
RoadRunnerNames::register();

$server = new Server(options: ['debug' => \getenv('GRPC_DEBUG') === '1']);
$server->registerService(\Test\Grpc\EchoInterface::class, new \Test\Grpc\EchoService());
$server->serve();
