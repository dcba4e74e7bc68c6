<?php

/*
 * Tests of Fastrr\Broadcast, loaded by run.php (its harness, and fakeRpc() from jobs.php).
 * Expected bytes were produced by Google's Python protobuf runtime from the server's own
 * broadcast.v1 messages (fastrr/broadcast/proto.py).
 *
 * The last test publishes through a real fastrr (python -m fastrr serve, a redis broker)
 * and reads the message on the Redis channel with a SUBSCRIBE of its own: it needs Redis on
 * 127.0.0.1:6379 and the project's Python ($FASTRR_PYTHON, else .venv/bin/python).
 */

declare(strict_types=1);

use Fastrr\Broadcast\Broadcast;
use Fastrr\Broadcast\DTO\V1\Message as BroadcastMessage;
use Fastrr\Broadcast\DTO\V1\Request as BroadcastRequest;
use Fastrr\Broadcast\DTO\V1\Response as BroadcastResponse;
use Fastrr\Broadcast\Exception\BroadcastException;
use Fastrr\Broadcast\Exception\InvalidArgumentException as BroadcastInvalidArgument;
use Fastrr\Broadcast\RoadRunnerNames as BroadcastNames;
use Fastrr\Broadcast\Topic\Group;
use Fastrr\Broadcast\Topic\SingleTopic;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\RPC;

test('broadcast proto: Request and Response bytes match the server\'s broadcast.v1', function (): void {
    $req = new BroadcastRequest(['messages' => [
        new BroadcastMessage(['topics' => ['a', 'b'], 'payload' => 'hi']),
        new BroadcastMessage(['topics' => ['a', 'b'], 'payload' => '']),
    ]]);
    hexEq('0a0a1201611201621a0268690a06120161120162', $req->serializeToString());
    $back = BroadcastRequest::decode($req->serializeToString());
    eq(['a', 'b'], $back->getMessages()[0]->getTopics());
    eq('hi', $back->getMessages()[0]->getPayload());
    eq(true, BroadcastResponse::decode(hex2bin('0801'))->getOk());
    eq(false, BroadcastResponse::decode('')->getOk());
});

test('broadcast publish: one broadcast.Publish, one Message per payload naming every topic', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => hex2bin('0801'));
    $broadcast = new Broadcast($rpc);
    $broadcast->publish(['a', 'b'], ['hi', '']);
    $broadcast->publish('a', 'hi');
    $broadcast->publish(new ArrayIterator(['a']), new ArrayIterator(['x', 'y']));
    eq(3, count($calls));
    eq('broadcast.Publish', $calls[0][0]);
    hexEq('0a0a1201611201621a0268690a06120161120162', $calls[0][1]);
    ok(($calls[0][2] & (new ProtobufCodec())->getIndex()) !== 0, 'sent with the protobuf codec');
    $second = BroadcastRequest::decode($calls[1][1])->getMessages();
    eq(1, count($second));
    eq(['a'], $second[0]->getTopics());
    eq(2, count(BroadcastRequest::decode($calls[2][1])->getMessages()));
});

test('broadcast publish: ok=false and server errors are BroadcastException', function (): void {
    [$rpc] = fakeRpc(fn () => '');
    throws(BroadcastException::class, fn () => (new Broadcast($rpc))->publish('t', 'm'),
        'An error occurred while publishing message');
    [$rpc] = fakeRpc(fn () => ['error' => 'broadcast.Publish: broker default: topic t: redis down']);
    $e = throws(BroadcastException::class, fn () => (new Broadcast($rpc))->publish('t', 'm'), 'redis down');
    ok($e->getPrevious() instanceof \Fastrr\RPC\Exception\ServiceException, 'the RPC error is the previous one');
});

test('broadcast publish: no topics, no messages, or non-strings are InvalidArgumentException', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => hex2bin('0801'));
    $broadcast = new Broadcast($rpc);
    throws(BroadcastInvalidArgument::class, fn () => $broadcast->publish([], 'm'), 'Unable to publish message to 0 topics');
    throws(BroadcastInvalidArgument::class, fn () => $broadcast->publish('t', []), 'Unable to publish 0 messages');
    throws(BroadcastInvalidArgument::class, fn () => $broadcast->publish(['t', 5], 'm'), 'must be a string, got int');
    throws(BroadcastInvalidArgument::class, fn () => $broadcast->publish(5, 'm'), 'got int');
    throws(BroadcastException::class, fn () => $broadcast->join([]), 'Unable to connect to 0 topics');
    eq(0, count($calls));
});

test('broadcast join: a SingleTopic or a Group that publishes to its topics', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => hex2bin('0801'));
    $broadcast = new Broadcast($rpc);
    $one = $broadcast->join('news');
    ok($one instanceof SingleTopic && $one->getName() === 'news', 'single topic');
    $group = $broadcast->join(['a', 'b']);
    ok($group instanceof Group && $group->getNames() === ['a', 'b'], 'group');
    $one->publish('x');
    $group->publish(['y', 'z']);
    eq(['news'], BroadcastRequest::decode($calls[0][1])->getMessages()[0]->getTopics());
    eq(['a', 'b'], BroadcastRequest::decode($calls[1][1])->getMessages()[1]->getTopics());
    throws(\RuntimeException::class, fn () => $broadcast->isAvailable(), 'deprecated');
});

test('broadcast RoadRunnerNames: Spiral\\RoadRunner\\Broadcast and Spiral\\Goridge\\RPC names work', function (): void {
    BroadcastNames::register();
    BroadcastNames::register();
    [$rpc] = fakeRpc(fn () => hex2bin('0801'));
    $class = 'Spiral\\RoadRunner\\Broadcast\\Broadcast';
    $broadcast = new $class($rpc);
    ok($broadcast instanceof \Spiral\RoadRunner\Broadcast\BroadcastInterface, 'BroadcastInterface');
    ok($broadcast->join('t') instanceof \Spiral\RoadRunner\Broadcast\TopicInterface, 'TopicInterface');
    ok($broadcast->join('t') instanceof \Spiral\RoadRunner\Broadcast\Topic\SingleTopic, 'Topic\\SingleTopic');
    ok($rpc instanceof \Spiral\Goridge\RPC\RPCInterface, 'Goridge RPCInterface');
    throws(\Spiral\RoadRunner\Broadcast\Exception\BroadcastException::class, fn () => $broadcast->publish([], 'm'));
});

/** A RESP SUBSCRIBE connection of its own: the frames a Redis client reads. */
function redisSubscribe(string $channel): mixed
{
    $sock = @stream_socket_client('tcp://127.0.0.1:6379', $errno, $errstr, 5);
    if ($sock === false) {
        throw new AssertionFailed("Redis on 127.0.0.1:6379: $errstr (the broadcast test needs it)");
    }
    stream_set_timeout($sock, 10);
    fwrite($sock, sprintf("*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", strlen($channel), $channel));
    redisRead($sock);   // [subscribe, channel, 1]
    return $sock;
}

function redisRead(mixed $sock): mixed
{
    $line = fgets($sock);
    if ($line === false) {
        throw new AssertionFailed('Redis: nothing read within 10 s');
    }
    $line = rtrim($line, "\r\n");
    switch ($line[0]) {
        case '*':
            $out = [];
            for ($i = 0, $n = (int)substr($line, 1); $i < $n; $i++) {
                $out[] = redisRead($sock);
            }
            return $out;
        case '$':
            $len = (int)substr($line, 1);
            $data = '';
            while (strlen($data) < $len + 2) {
                $data .= fread($sock, $len + 2 - strlen($data));
            }
            return substr($data, 0, $len);
        case ':':
            return (int)substr($line, 1);
        default:
            return substr($line, 1);
    }
}

test('broadcast through a real fastrr: the message arrives on the Redis channel', function (): void {
    $root = dirname(__DIR__, 2);
    $python = getenv('FASTRR_PYTHON') ?: $root . '/.venv/bin/python';
    ok(is_executable($python), "the project's Python at $python (set FASTRR_PYTHON)");
    $dir = sys_get_temp_dir() . '/fastrr-php-broadcast-' . getmypid();
    @mkdir($dir);
    $probe = stream_socket_server('tcp://127.0.0.1:0');
    $port = (int)substr(strrchr(stream_socket_get_name($probe, false), ':'), 1);
    fclose($probe);
    $prefix = 'php-test-' . getmypid() . ':';
    file_put_contents("$dir/.rr.yaml", implode("\n", [
        'version: "3"',
        'server: {command: "php ' . $root . '/tests/workers/app.php"}',
        "rpc: {listen: \"tcp://127.0.0.1:$port\"}",
        'broadcast:',
        '  default: {driver: redis, config: {addrs: ["127.0.0.1:6379"], prefix: "' . $prefix . '"}}',
        '',
    ]));
    $sub = redisSubscribe($prefix . 'news');
    $proc = proc_open([$python, '-m', 'fastrr', 'serve', '-c', "$dir/.rr.yaml"],
        [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/out.log", 'w'], 2 => ['file', "$dir/out.log", 'a']],
        $pipes, $root);
    try {
        $rpc = null;
        for ($i = 0; $i < 200 && $rpc === null; $i++) {
            try {
                $rpc = RPC::create("tcp://127.0.0.1:$port");
            } catch (\Throwable) {
                usleep(50_000);
            }
        }
        ok($rpc !== null, 'fastrr answers RPC: ' . @file_get_contents("$dir/out.log"));
        (new Broadcast($rpc))->publish('news', "hello from php \x00\xff");
        $msg = redisRead($sub);
        eq('message', $msg[0]);
        eq($prefix . 'news', $msg[1]);
        // the envelope (fastrr/broadcast/brokers/redis.py): FE FB 42 31, id length, id, payload
        eq("\xfe\xfbB1", substr($msg[2], 0, 4));
        $idLen = ord($msg[2][4]);
        ok(preg_match('/^\d+-\d+-[0-9a-f]{8}$/', substr($msg[2], 5, $idLen)) === 1, 'message id');
        eq("hello from php \x00\xff", substr($msg[2], 5 + $idLen));
    } finally {
        proc_terminate($proc);
        proc_close($proc);
        fclose($sub);
        @unlink("$dir/.rr.yaml");
        @unlink("$dir/out.log");
        @rmdir($dir);
    }
});
