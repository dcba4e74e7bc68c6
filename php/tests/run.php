<?php

/*
 * Self-contained tests for the PHP library (no PHPUnit):
 *
 *     php php/tests/run.php [filter]
 *
 * Byte expectations were produced by an independent encoder (Python's zlib.crc32
 * and struct), not by the code under test. The last line is "N passed, M failed";
 * the exit status is non-zero when anything failed.
 */

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Fastrr\Frame;
use Fastrr\Http\HttpWorker;
use Fastrr\Http\ProtoCodec;
use Fastrr\Http\PSR7Worker;
use Fastrr\Http\PhpInput;
use Fastrr\Http\PhpStreamWrapper;
use Fastrr\Http\Request;
use Fastrr\Http\SuperglobalsWorker;
use Fastrr\Http\Uploads;
use Fastrr\Payload;
use Fastrr\Relay\Relay;
use Fastrr\Relay\RelayException;
use Fastrr\Relay\RelayInterface;
use Fastrr\Relay\SocketRelay;
use Fastrr\Relay\StreamRelay;
use Fastrr\StreamStoppedException;
use Fastrr\Worker;
use Fastrr\WorkerException;

// ---------------------------------------------------------------- harness

final class AssertionFailed extends \Exception
{
}

/** @var array<string, callable> */
$tests = [];
$assertions = 0;

function test(string $name, callable $fn): void
{
    global $tests;
    $tests[$name] = $fn;
}

function ok(bool $cond, string $what = 'condition'): void
{
    global $assertions;
    $assertions++;
    if (!$cond) {
        throw new AssertionFailed($what);
    }
}

function eq(mixed $expected, mixed $actual, string $what = 'value'): void
{
    global $assertions;
    $assertions++;
    if ($expected !== $actual) {
        throw new AssertionFailed(sprintf(
            "%s:\n    expected %s\n    actual   %s",
            $what,
            var_export($expected, true),
            var_export($actual, true),
        ));
    }
}

function hexEq(string $expectedHex, string $actual, string $what = 'bytes'): void
{
    eq($expectedHex, bin2hex($actual), $what);
}

/**
 * @param class-string<\Throwable> $class
 */
function throws(string $class, callable $fn, string $messagePart = ''): \Throwable
{
    global $assertions;
    $assertions++;
    try {
        $fn();
    } catch (\Throwable $e) {
        if (!$e instanceof $class) {
            throw new AssertionFailed(sprintf('expected %s, got %s: %s', $class, get_class($e), $e->getMessage()));
        }
        if ($messagePart !== '' && !str_contains($e->getMessage(), $messagePart)) {
            throw new AssertionFailed(sprintf('expected message containing "%s", got "%s"', $messagePart, $e->getMessage()));
        }
        return $e;
    }
    throw new AssertionFailed("expected $class, nothing thrown");
}

/**
 * An in-memory relay: frames queued for the worker, frames the worker sent.
 * Every frame goes through encode/decode so the bytes are exercised too.
 */
final class MemoryRelay implements RelayInterface
{
    /** @var list<string> encoded frames waiting to be read */
    public array $incoming = [];

    /** @var list<string> encoded frames the worker sent */
    public array $sent = [];

    /** @var null|callable(Frame, MemoryRelay): void reacts to each sent frame */
    public $onSend = null;

    public function push(Frame $frame): self
    {
        $this->incoming[] = $frame->encode();
        return $this;
    }

    public function waitFrame(): Frame
    {
        if ($this->incoming === []) {
            throw new RelayException('memory relay: nothing to read');
        }
        return Frame::decode(array_shift($this->incoming));
    }

    public function send(Frame $frame): void
    {
        $this->sent[] = $frame->encode();
        if ($this->onSend !== null) {
            ($this->onSend)($frame, $this);
        }
    }

    public function hasFrame(): bool
    {
        return $this->incoming !== [];
    }

    /** @return list<Frame> */
    public function sentFrames(): array
    {
        return array_map([Frame::class, 'decode'], $this->sent);
    }
}

/** A stream wrapper that hands out at most 3 bytes per read, to exercise short-read loops. */
final class TrickleStream
{
    /** @var array<string, string> */
    public static array $data = [];

    /** @var resource|null */
    public $context;

    private string $key = '';
    private int $pos = 0;

    public function stream_open(string $path, string $mode, int $options, ?string &$opened): bool
    {
        $this->key = substr($path, strlen('trickle://'));
        return isset(self::$data[$this->key]);
    }

    public function stream_read(int $count): string
    {
        $chunk = substr(self::$data[$this->key], $this->pos, min($count, 3));
        $this->pos += strlen($chunk);
        return $chunk;
    }

    public function stream_eof(): bool
    {
        return $this->pos >= strlen(self::$data[$this->key]);
    }

    public function stream_write(string $data): int
    {
        return 0;
    }

    /** @return array<string, int> */
    public function stream_stat(): array
    {
        return [];
    }
}

stream_wrapper_register('trickle', TrickleStream::class);

/**
 * Runs $fn with the worker's log going to memory; returns what was logged.
 */
function captureLog(callable $fn): string
{
    $log = fopen('php://memory', 'w+b');
    Worker::setLogStream($log);
    try {
        $fn();
    } finally {
        Worker::setLogStream(null);
    }
    rewind($log);
    return (string)stream_get_contents($log);
}

function jsonContext(array $overrides = []): string
{
    return json_encode($overrides + [
        'remoteAddr' => '10.0.0.7',
        'protocol' => 'HTTP/1.1',
        'method' => 'GET',
        'uri' => 'http://example.com:8080/path/to?a=1&b[]=2&b[]=3',
        'headers' => ['Accept' => ['*/*'], 'X-Many' => ['1', '2']],
        'cookies' => ['sid' => 'abc'],
        'rawQuery' => 'a=1&b[]=2&b[]=3',
        'parsed' => false,
        'uploads' => null,
        'attributes' => ['route' => 'home'],
    ], JSON_UNESCAPED_SLASHES);
}

function requestFrame(string $context, string $body = '', int $flags = Frame::CODEC_JSON): Frame
{
    return new Frame($context . $body, [strlen($context)], $flags);
}

// ---------------------------------------------------------------- Frame

test('frame: PID request from the server (Appendix A)', function (): void {
    hexEq(
        '13090c0000005f0c467300007b22706964223a343234327d',
        (new Frame('{"pid":4242}', [], Frame::CONTROL | Frame::CODEC_JSON))->encode(),
    );
});

test('frame: worker stop request (Appendix A)', function (): void {
    hexEq(
        '14000d000000f339efdb00000d0000007b2273746f70223a747275657d',
        Frame::pack('{"stop":true}', [13]),
    );
});

test('frame: worker error (Appendix A)', function (): void {
    hexEq(
        '1340160000009c8101190000626f6f6d3a20736f6d657468696e67206661696c6564',
        (new Frame('boom: something failed', [], Frame::ERROR))->encode(),
    );
});

test('frame: PONG and STOP from the server (Appendix A)', function (): void {
    hexEq('13000000000096d180340800', (new Frame('', [], 0, Frame::PONG))->encode(), 'PONG');
    hexEq('13000000000096d180340200', (new Frame('', [], 0, Frame::STOP))->encode(), 'STOP');
});

test('frame: RPC call with two options (Appendix A)', function (): void {
    hexEq(
        '1508160000000971dba700000100000010000000696e666f726d65722e576f726b657273226874747022',
        Frame::pack('informer.Workers"http"', [1, 16], Frame::CODEC_JSON),
    );
});

test('frame: constants', function (): void {
    eq([0x01, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80], [
        Frame::CONTROL, Frame::CODEC_RAW, Frame::CODEC_JSON, Frame::CODEC_MSGPACK,
        Frame::CODEC_GOB, Frame::ERROR, Frame::CODEC_PROTO,
    ]);
    eq([0x01, 0x02, 0x04, 0x08], [Frame::STREAM, Frame::STOP, Frame::PING, Frame::PONG]);
});

test('frame: decode round trip', function (): void {
    $cases = [
        new Frame('', [], 0, 0),
        new Frame('hello', [], Frame::CODEC_RAW, 0),
        new Frame("ctx\x00body", [3], Frame::CODEC_JSON, Frame::STREAM | Frame::PING),
        new Frame('abc', [0xFFFFFFFF, 0, 7], Frame::CODEC_PROTO | Frame::ERROR, 0),
        new Frame(str_repeat("\xFF", 70000), range(1, 10), 0xFF, 0xFF),
    ];
    foreach ($cases as $i => $frame) {
        $bytes = $frame->encode();
        eq(12 + 4 * count($frame->options) + strlen($frame->payload), strlen($bytes), "length of case $i");
        eq(0x10 | (3 + count($frame->options)), ord($bytes[0]), "byte 0 of case $i");
        eq(0, ord($bytes[11]), "byte 11 of case $i");
        $back = Frame::decode($bytes);
        eq($frame->payload, $back->payload, "payload of case $i");
        eq($frame->options, $back->options, "options of case $i");
        eq($frame->flags, $back->flags, "flags of case $i");
        eq($frame->byte10, $back->byte10, "byte10 of case $i");
    }
});

test('frame: decode rejects bad input', function (): void {
    $good = Frame::pack('{"stop":true}', [13]);
    $badCrc = $good;
    $badCrc[7] = chr(ord($badCrc[7]) ^ 1);
    throws(RelayException::class, fn () => Frame::decode($badCrc), 'CRC');
    throws(RelayException::class, fn () => Frame::decode('garbage!garbage!garbage!'), 'invalid frame header');
    throws(RelayException::class, fn () => Frame::decode(substr($good, 0, -1)), 'length mismatch');
    throws(RelayException::class, fn () => Frame::decode($good . 'x'), 'length mismatch');
    throws(RelayException::class, fn () => Frame::decode('short'));
    throws(\InvalidArgumentException::class, fn () => Frame::pack('', range(1, 11)));
    // The CRC covers bytes 0..5 only: changing byte 10 keeps the frame valid.
    $b10 = $good;
    $b10[10] = "\x01";
    eq(Frame::STREAM, Frame::decode($b10)->byte10);
});

// ---------------------------------------------------------------- relays

test('relay: StreamRelay reads frames in pieces and writes them whole', function (): void {
    $frames = [
        new Frame('{"pid":1}', [], Frame::CONTROL | Frame::CODEC_JSON),
        new Frame('ctxbody', [3], Frame::CODEC_JSON),
        new Frame(str_repeat('z', 5000), [], 0, Frame::PONG),
    ];
    TrickleStream::$data['a'] = implode('', array_map(fn (Frame $f) => $f->encode(), $frames));
    $in = fopen('trickle://a', 'rb');
    $out = fopen('php://memory', 'w+b');
    $relay = new StreamRelay($in, $out);
    foreach ($frames as $i => $expected) {
        $got = $relay->waitFrame();
        eq($expected->encode(), $got->encode(), "frame $i");
    }
    throws(RelayException::class, fn () => $relay->waitFrame(), 'EOF');

    $relay->send(new Frame('x', [1], Frame::CODEC_JSON, Frame::STREAM));
    rewind($out);
    eq(Frame::pack('x', [1], Frame::CODEC_JSON, Frame::STREAM), stream_get_contents($out));
});

test('relay: StreamRelay EOF inside a payload', function (): void {
    $in = fopen('php://memory', 'w+b');
    fwrite($in, substr(Frame::pack('0123456789', [4]), 0, 20));
    rewind($in);
    $relay = new StreamRelay($in, fopen('php://memory', 'w+b'));
    throws(RelayException::class, fn () => $relay->waitFrame(), 'EOF after');
});

test('relay: hasFrame on a pipe', function (): void {
    $pair = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
    $relay = new StreamRelay($pair[0], $pair[0]);
    ok(!$relay->hasFrame(), 'nothing yet');
    fwrite($pair[1], Frame::pack('', [], 0, Frame::STOP) . Frame::pack('', [], 0, Frame::PONG));
    ok($relay->hasFrame(), 'frame arrived');
    eq(Frame::STOP, $relay->waitFrame()->byte10);
    // The second frame may already sit in PHP's read buffer; hasFrame must still see it.
    ok($relay->hasFrame(), 'buffered frame');
    eq(Frame::PONG, $relay->waitFrame()->byte10);
    ok(!$relay->hasFrame(), 'drained');
});

test('relay: Relay::create DSN parsing', function (): void {
    ok(Relay::create('pipes') instanceof StreamRelay, 'pipes');
    ok(Relay::create('pipes://stdin:stdout') instanceof StreamRelay, 'pipes://stdin:stdout');
    $bad = [
        'foo' => 'invalid relay DSN',
        '' => 'invalid relay DSN',
        'tcp://:6001' => 'non-empty host',
        'tcp://127.0.0.1' => 'tcp://host:port',
        'tcp://127.0.0.1:' => 'tcp://host:port',
        'tcp://127.0.0.1:http' => 'tcp://host:port',
        'tcp://127.0.0.1:70000' => 'port 1-65535',
        'unix://' => 'unix:///path',
        'pipes://stdin:stderr' => 'only pipes',
        'http://127.0.0.1:80' => 'unsupported relay scheme "http"',
        'udp://127.0.0.1:5000' => 'unsupported relay scheme',
    ];
    foreach ($bad as $dsn => $message) {
        throws(\InvalidArgumentException::class, fn () => Relay::create($dsn), $message);
    }
});

test('relay: SocketRelay over tcp and unix sockets', function (): void {
    $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    ok($server !== false, "listen: $errstr");
    $address = 'tcp://' . stream_socket_get_name($server, false);
    $relay = Relay::create($address);
    ok($relay instanceof SocketRelay, 'tcp relay');
    $conn = stream_socket_accept($server, 2);
    fwrite($conn, Frame::pack('{"pid":99}', [], Frame::CONTROL | Frame::CODEC_JSON));
    $worker = new Worker($relay, false);
    fwrite($conn, Frame::pack('{"stop":true}', [], Frame::CONTROL | Frame::CODEC_JSON));
    eq(null, $worker->waitPayload(), 'stop after handshake');
    $answer = fread($conn, 1024);
    eq(Frame::pack('{"pid":' . getmypid() . '}', [], Frame::CONTROL), $answer, 'pid answer over tcp');

    $path = sys_get_temp_dir() . '/fastrr-test-' . getmypid() . '.sock';
    @unlink($path);
    $userver = stream_socket_server('unix://' . $path, $errno, $errstr);
    ok($userver !== false, "listen unix: $errstr");
    $urelay = Relay::create('unix://' . $path);
    $uconn = stream_socket_accept($userver, 2);
    $urelay->send(new Frame('ping', [2], Frame::CODEC_RAW));
    fwrite($uconn, Frame::pack('pong', [], Frame::CODEC_RAW));
    eq(Frame::pack('ping', [2], Frame::CODEC_RAW), fread($uconn, 1024), 'unix send');
    eq('pong', $urelay->waitFrame()->payload, 'unix receive');
    fclose($uconn);
    throws(RelayException::class, fn () => $urelay->waitFrame(), 'EOF');
    @unlink($path);
});

test('relay: SocketRelay gives up with a clear error', function (): void {
    $path = sys_get_temp_dir() . '/fastrr-missing-' . getmypid() . '.sock';
    throws(RelayException::class, fn () => new SocketRelay('unix://' . $path, 0.2), 'cannot connect to relay');
});

// ---------------------------------------------------------------- Worker

test('worker: PID handshake, then a request split into header and body', function (): void {
    $relay = (new MemoryRelay())
        ->push(new Frame('{"pid":4242}', [], Frame::CONTROL | Frame::CODEC_JSON))
        ->push(new Frame('{"a":1}BODY', [7], Frame::CODEC_JSON));
    $worker = new Worker($relay, false);
    $payload = $worker->waitPayload();
    eq('{"a":1}', $payload->header);
    eq('BODY', $payload->body);
    eq(true, $payload->eos);
    eq([Frame::pack('{"pid":' . getmypid() . '}', [], Frame::CONTROL)], $relay->sent, 'handshake answer');
});

test('worker: stop control frame ends the loop', function (): void {
    $relay = (new MemoryRelay())->push(new Frame('{"stop":true}', [], Frame::CONTROL | Frame::CODEC_JSON));
    eq(null, (new Worker($relay, false))->waitPayload());
    $relay = (new MemoryRelay())->push(new Frame('{"what":1}', [], Frame::CONTROL));
    throws(WorkerException::class, fn () => (new Worker($relay, false))->waitPayload(), 'unknown control');
    $relay = (new MemoryRelay())->push(new Frame('nope', [], Frame::CONTROL));
    throws(WorkerException::class, fn () => (new Worker($relay, false))->waitPayload(), 'invalid control');
});

test('worker: respond, error and stop frames', function (): void {
    $relay = new MemoryRelay();
    $worker = new Worker($relay, false);
    $relay->push(requestFrame('{}'))->push(requestFrame('{}'))->push(requestFrame('{}'));

    $worker->waitPayload();
    $worker->respond(new Payload('body', 'ctx'));
    eq(Frame::pack('ctxbody', [3], 0), $relay->sent[0], 'respond, default codec 0');

    $worker->waitPayload();
    $worker->error('boom: something failed');
    hexEq('1340160000009c8101190000626f6f6d3a20736f6d657468696e67206661696c6564', $relay->sent[1], 'error');

    $worker->waitPayload();
    $worker->stop();
    hexEq('14000d000000f339efdb00000d0000007b2273746f70223a747275657d', $relay->sent[2], 'stop');
});

test('worker: a second answer to one request is dropped', function (): void {
    $relay = (new MemoryRelay())->push(requestFrame('{}'));
    $worker = new Worker($relay, false);
    $worker->waitPayload();
    $worker->respond(new Payload('one', '', true), Frame::CODEC_JSON);
    $log = captureLog(function () use ($worker): void {
        $worker->error('too late');
        $worker->respond(new Payload('two'));
    });
    eq(1, count($relay->sent));
    ok(str_contains($log, 'dropped an error') && str_contains($log, 'dropped a response'), 'warnings logged');
});

test('worker: stray PONG/STOP before a request are ignored', function (): void {
    $relay = (new MemoryRelay())
        ->push(new Frame('', [], 0, Frame::PONG))
        ->push(new Frame('', [], 0, Frame::STOP))
        ->push(requestFrame('c', 'b'));
    $payload = (new Worker($relay, false))->waitPayload();
    eq(['c', 'b'], [$payload->header, $payload->body]);
});

test('worker: Worker::create rejects a bad RR_RELAY', function (): void {
    $old = $_SERVER['RR_RELAY'] ?? null;
    $_SERVER['RR_RELAY'] = 'carrier-pigeon';
    try {
        throws(\InvalidArgumentException::class, fn () => Worker::create(false), 'carrier-pigeon');
    } finally {
        if ($old === null) {
            unset($_SERVER['RR_RELAY']);
        } else {
            $_SERVER['RR_RELAY'] = $old;
        }
    }
});

test('worker: output interception sends echo to stderr, not stdout', function (): void {
    $code = 'require ' . var_export(dirname(__DIR__) . '/autoload.php', true) . ';'
        . '$w = new Fastrr\\Worker(new Fastrr\\Relay\\StreamRelay());'
        . 'echo "stray"; print "ed"; $w->respond(new Fastrr\\Payload("b", "c"));';
    $proc = proc_open([PHP_BINARY, '-r', $code], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    $stdout = stream_get_contents($pipes[1]);
    $stderr = stream_get_contents($pipes[2]);
    eq(0, proc_close($proc), 'exit status');
    eq(Frame::pack('cb', [1], 0), $stdout, 'stdout holds only the frame');
    eq('strayed', $stderr, 'stderr got the echo');
});

// ---------------------------------------------------------------- HttpWorker

test('http: request decoding from the JSON context', function (): void {
    $relay = (new MemoryRelay())->push(requestFrame(jsonContext(), 'raw body'));
    $request = (new HttpWorker(new Worker($relay, false)))->waitRequest();
    eq('10.0.0.7', $request->remoteAddr);
    eq('HTTP/1.1', $request->protocol);
    eq('GET', $request->method);
    eq('http://example.com:8080/path/to?a=1&b[]=2&b[]=3', $request->uri);
    eq(['Accept' => ['*/*'], 'X-Many' => ['1', '2']], $request->headers);
    eq(['sid' => 'abc'], $request->cookies);
    eq(['a' => '1', 'b' => ['2', '3']], $request->query);
    eq('raw body', $request->body);
    eq(false, $request->parsed);
    eq(null, $request->getParsedBody());
    eq([], $request->uploads);
    eq(['route' => 'home'], $request->attributes);
    eq(['1', '2'], $request->getHeader('x-many'));
    eq('1, 2', $request->getHeaderLine('X-MANY'));
});

test('http: empty maps may be {}, [] or null; parsed bodies', function (): void {
    foreach (['{}', '[]', 'null'] as $empty) {
        $ctx = '{"remoteAddr":"::1","protocol":"HTTP/2.0","method":"POST","uri":"https://h/x",'
            . "\"headers\":$empty,\"cookies\":$empty,\"rawQuery\":\"\",\"parsed\":true,"
            . "\"uploads\":$empty,\"attributes\":$empty}";
        $relay = (new MemoryRelay())->push(requestFrame($ctx, '{"a":["1","2"],"b":{"c":"d"}}'));
        $request = (new HttpWorker(new Worker($relay, false)))->waitRequest();
        eq([[], [], [], [], []], [$request->headers, $request->cookies, $request->query, $request->uploads, $request->attributes], "empty maps as $empty");
        eq(['a' => ['1', '2'], 'b' => ['c' => 'd']], $request->getParsedBody(), 'parsed body');
    }
    $relay = (new MemoryRelay())->push(requestFrame('{"parsed":true}', ''));
    eq([], (new HttpWorker(new Worker($relay, false)))->waitRequest()->getParsedBody(), 'empty parsed body');
});

test('http: response frame bytes', function (): void {
    $relay = (new MemoryRelay())->push(requestFrame(jsonContext()))->push(requestFrame(jsonContext()));
    $http = new HttpWorker(new Worker($relay, false));
    $http->waitRequest();
    $http->respond(200, '{"message":"Hello, World!"}', ['Content-Type' => ['application/json']]);
    hexEq(
        '140859000000c7eaf0af00003e0000007b22737461747573223a3230302c2268656164657273223a7b22436f6e74656e742d54797065223a5b226170706c69636174696f6e2f6a736f6e225d7d7d7b226d657373616765223a2248656c6c6f2c20576f726c6421227d',
        $relay->sent[0],
        'hello response',
    );
    $http->waitRequest();
    $http->respond(204);
    hexEq(
        '14081b000000717aed9e00001b0000007b22737461747573223a3230342c2268656164657273223a7b7d7d',
        $relay->sent[1],
        'empty headers encode as {}',
    );
});

test('http: header values are normalised to lists of strings', function (): void {
    $relay = (new MemoryRelay())->push(requestFrame(jsonContext()));
    $http = new HttpWorker(new Worker($relay, false));
    $http->waitRequest();
    $http->respond(200, '', ['X-Int' => 5, 'X-Map' => [3 => 'a', 7 => 2], 'X-Str' => 'v']);
    $frame = Frame::decode($relay->sent[0]);
    eq(
        '{"status":200,"headers":{"X-Int":["5"],"X-Map":["a","2"],"X-Str":["v"]}}',
        substr($frame->payload, 0, $frame->options[0]),
    );
});

test('http: 103 Early Hints then the final response', function (): void {
    $relay = (new MemoryRelay())->push(requestFrame(jsonContext()));
    $http = new HttpWorker(new Worker($relay, false));
    $http->waitRequest();
    $http->respond(103, '', ['Link' => ['</style.css>; rel=preload; as=style']], false);
    $http->respond(200, 'ok');
    hexEq(
        '14084900000058bde9ff0100490000007b22737461747573223a3130332c2268656164657273223a7b224c696e6b223a5b223c2f7374796c652e6373733e3b2072656c3d7072656c6f61643b2061733d7374796c65225d7d7d',
        $relay->sent[0],
        '103 frame with STREAM',
    );
    $final = Frame::decode($relay->sent[1]);
    eq(0, $final->byte10, 'final frame without STREAM');
    eq('ok', substr($final->payload, $final->options[0]));
    throws(\InvalidArgumentException::class, fn () => $http->respond(103, 'body'), '1xx');
});

test('http: generator body streams with PING every 5th chunk', function (): void {
    $relay = (new MemoryRelay())->push(requestFrame(jsonContext()));
    $relay->onSend = function (Frame $frame, MemoryRelay $r): void {
        if ($frame->byte10 & Frame::PING) {
            $r->push(new Frame('', [], 0, Frame::PONG));
        }
    };
    $http = new HttpWorker(new Worker($relay, false));
    $http->waitRequest();
    $http->respond(200, (function () {
        for ($i = 0; $i < 11; $i++) {
            yield "c$i,";
        }
        return 'end';
    })(), ['Content-Type' => ['text/plain']]);

    $frames = $relay->sentFrames();
    eq(12, count($frames), 'eleven chunks and a final frame');
    $body = '';
    foreach ($frames as $i => $frame) {
        $ctx = substr($frame->payload, 0, $frame->options[0]);
        eq('{"status":200,"headers":{"Content-Type":["text/plain"]}}', $ctx, "context repeated on frame $i");
        eq(Frame::CODEC_JSON, $frame->flags, "flags of frame $i");
        $body .= substr($frame->payload, $frame->options[0]);
        $expected = $i === 11 ? 0 : (($i + 1) % 5 === 0 ? Frame::STREAM | Frame::PING : Frame::STREAM);
        eq($expected, $frame->byte10, "byte10 of frame $i");
    }
    eq('c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,end', $body);
    eq([], $relay->incoming, 'both PONGs consumed');
});

test('http: STOP from the server stops the generator', function (): void {
    $relay = (new MemoryRelay())->push(requestFrame(jsonContext()));
    $relay->onSend = function (Frame $frame, MemoryRelay $r): void {
        static $n = 0;
        if (++$n === 2) {
            $r->push(new Frame('', [], 0, Frame::STOP));
        }
    };
    $caught = null;
    $cleanedUp = false;
    $http = new HttpWorker(new Worker($relay, false));
    $http->waitRequest();
    $http->respond(200, (function () use (&$caught, &$cleanedUp) {
        try {
            for ($i = 0; $i < 100; $i++) {
                yield "chunk $i\n";
            }
        } catch (StreamStoppedException $e) {
            $caught = $e;
            throw $e;
        } finally {
            $cleanedUp = true;
        }
    })());
    ok($caught instanceof StreamStoppedException, 'generator saw StreamStoppedException');
    ok($cleanedUp, 'generator finally ran');
    $frames = $relay->sentFrames();
    eq(3, count($frames), 'two chunks and the closing frame');
    eq(Frame::STREAM, $frames[1]->byte10);
    eq(0, $frames[2]->byte10, 'closing frame has no STREAM bit');
    eq('', substr($frames[2]->payload, $frames[2]->options[0]), 'closing frame is empty');
});

test('http: a generator that fails mid-stream still closes the stream', function (): void {
    $relay = (new MemoryRelay())->push(requestFrame(jsonContext()));
    $http = new HttpWorker(new Worker($relay, false));
    $http->waitRequest();
    throws(\DomainException::class, fn () => $http->respond(200, (function () {
        yield 'one';
        throw new \DomainException('app failure');
    })()), 'app failure');
    $frames = $relay->sentFrames();
    eq([Frame::STREAM, 0], [$frames[0]->byte10, $frames[1]->byte10]);
    captureLog(fn () => $http->getWorker()->error('late error'));
    eq(2, count($relay->sent), 'no error frame after the stream was closed');
});

// ---------------------------------------------------------------- protobuf contexts

test('proto: request decoding and response encoding', function (): void {
    $field = fn (int $n, string $v): string => chr($n << 3 | 2) . chr(strlen($v)) . $v;
    $entry = fn (int $n, string $k, array $vs): string => $field($n, $field(1, $k) . $field(2, implode('', array_map(fn ($v) => $field(1, $v), $vs))));
    $msg = $field(1, '10.1.2.3') . $field(2, 'HTTP/2.0') . $field(3, 'PUT') . $field(4, 'https://h/p?q=1')
        . $entry(5, 'Content-Type', ['application/json']) . $entry(5, 'X-Many', ['1', '2'])
        . $entry(6, 'sid', ['abc']) . $field(7, 'q=1') . "\x40\x01" . $field(9, '{"f":{"name":"a.txt"}}')
        . $entry(10, 'attr', ['v', 'ignored']);
    $ctx = ProtoCodec::decodeRequest($msg);
    eq('10.1.2.3', $ctx['remoteAddr']);
    eq('HTTP/2.0', $ctx['protocol']);
    eq('PUT', $ctx['method']);
    eq('https://h/p?q=1', $ctx['uri']);
    eq(['Content-Type' => ['application/json'], 'X-Many' => ['1', '2']], $ctx['headers']);
    eq(['sid' => 'abc'], $ctx['cookies']);
    eq('q=1', $ctx['rawQuery']);
    eq(true, $ctx['parsed']);
    eq(['f' => ['name' => 'a.txt']], $ctx['uploads']);
    eq(['attr' => 'v'], $ctx['attributes']);
    throws(\UnexpectedValueException::class, fn () => ProtoCodec::decodeRequest("\x0A\x05ab"));

    hexEq(
        '08c801121c0a0c436f6e74656e742d54797065120c0a0a746578742f706c61696e12110a07582d4d756c746912060a01610a0162',
        ProtoCodec::encodeResponse(200, ['Content-Type' => ['text/plain'], 'X-Multi' => ['a', 'b']]),
    );

    // A protobuf request is answered with a protobuf response, flags 0x80.
    $relay = (new MemoryRelay())->push(requestFrame($msg, '{}', Frame::CODEC_PROTO));
    $http = new HttpWorker(new Worker($relay, false));
    $request = $http->waitRequest();
    eq(['q' => '1'], $request->query);
    $http->respond(201, 'x');
    $frame = Frame::decode($relay->sent[0]);
    eq(Frame::CODEC_PROTO, $frame->flags);
    hexEq('08c901', substr($frame->payload, 0, $frame->options[0]));
});

// ---------------------------------------------------------------- $_FILES layout
//
// Every expected array below is what PHP 8.2 (php -S, upload_max_filesize=1K)
// put in $_FILES for the same multipart form, with only the random tmp_name
// values replaced.

/** One leaf of the uploads tree as the server sends it. */
function upload(string $name, string $mime, int $size, int $error, string $tmpName): array
{
    return ['name' => $name, 'mime' => $mime, 'size' => $size, 'error' => $error, 'tmpName' => $tmpName];
}

test('files: a single file `f`', function (): void {
    eq(
        ['f' => [
            'name' => 'a.txt',
            'full_path' => 'a.txt',
            'type' => 'text/plain',
            'tmp_name' => '/tmp/upload1',
            'error' => 0,
            'size' => 5,
        ]],
        Uploads::toPhpFiles(['f' => upload('a.txt', 'text/plain', 5, 0, '/tmp/upload1')]),
    );
    eq([], Uploads::toPhpFiles([]));
});

test('files: two files under `f[]`', function (): void {
    eq(
        ['f' => [
            'name' => [0 => 'a.txt', 1 => 'b.txt'],
            'full_path' => [0 => 'a.txt', 1 => 'b.txt'],
            'type' => [0 => 'text/plain', 1 => 'text/plain'],
            'tmp_name' => [0 => '/tmp/upload1', 1 => '/tmp/upload2'],
            'error' => [0 => 0, 1 => 0],
            'size' => [0 => 5, 1 => 2],
        ]],
        Uploads::toPhpFiles(['f' => [
            upload('a.txt', 'text/plain', 5, 0, '/tmp/upload1'),
            upload('b.txt', 'text/plain', 2, 0, '/tmp/upload2'),
        ]]),
    );
});

test('files: nested names `docs[a][]` and `docs[b]`', function (): void {
    eq(
        ['docs' => [
            'name' => ['a' => [0 => 'a.txt', 1 => 'b.txt'], 'b' => 'b.txt'],
            'full_path' => ['a' => [0 => 'a.txt', 1 => 'b.txt'], 'b' => 'b.txt'],
            'type' => ['a' => [0 => 'text/plain', 1 => 'text/plain'], 'b' => 'text/plain'],
            'tmp_name' => ['a' => [0 => '/tmp/upload1', 1 => '/tmp/upload2'], 'b' => '/tmp/upload3'],
            'error' => ['a' => [0 => 0, 1 => 0], 'b' => 0],
            'size' => ['a' => [0 => 5, 1 => 2], 'b' => 2],
        ]],
        Uploads::toPhpFiles(['docs' => [
            'a' => [
                upload('a.txt', 'text/plain', 5, 0, '/tmp/upload1'),
                upload('b.txt', 'text/plain', 2, 0, '/tmp/upload2'),
            ],
            'b' => upload('b.txt', 'text/plain', 2, 0, '/tmp/upload3'),
        ]]),
    );
});

test('files: error 4 (no file) and error 1 (too big)', function (): void {
    // fastrr: empty filename → error 4; over max_file_size → error 1, size 0, no temp file.
    $expected = [
        'none' => [
            'name' => '',
            'full_path' => '',
            'type' => '',
            'tmp_name' => '',
            'error' => 4,
            'size' => 0,
        ],
        'big' => [
            'name' => 'big.bin',
            'full_path' => 'big.bin',
            'type' => '',
            'tmp_name' => '',
            'error' => 1,
            'size' => 0,
        ],
    ];
    eq($expected, Uploads::toPhpFiles([
        'none' => upload('', 'application/octet-stream', 0, 4, ''),
        'big' => upload('big.bin', 'application/octet-stream', 0, 1, ''),
    ]));
    // RoadRunner keeps the declared size and may keep a name for failed files; PHP does not.
    eq($expected['big'], Uploads::toPhpFiles(['big' => upload('big.bin', 'image/png', 3000, 1, '')])['big']);
    eq(
        ['name' => 'x.exe', 'full_path' => 'x.exe', 'type' => '', 'tmp_name' => '', 'error' => 8, 'size' => 0],
        Uploads::toPhpFiles(['x' => upload('x.exe', 'application/x-msdownload', 10, 8, '/tmp/leftover')])['x'],
    );
});

test('files: an empty slot among `f[]` and client paths', function (): void {
    eq(
        ['f' => [
            'name' => [0 => 'a.txt', 1 => ''],
            'full_path' => [0 => 'a.txt', 1 => ''],
            'type' => [0 => 'text/plain', 1 => ''],
            'tmp_name' => [0 => '/tmp/upload1', 1 => ''],
            'error' => [0 => 0, 1 => 4],
            'size' => [0 => 5, 1 => 0],
        ]],
        Uploads::toPhpFiles(['f' => [
            upload('a.txt', 'text/plain', 5, 0, '/tmp/upload1'),
            upload('', 'application/octet-stream', 0, 4, ''),
        ]]),
    );
    // filename="C:\foo\bar/file3.txt" (php-src tests/basic/rfc1867_max_file_size.phpt); full_path since PHP 8.1.
    eq(
        ['name' => 'file3.txt', 'full_path' => 'C:\\foo\\bar/file3.txt', 'type' => 'text/plain', 'tmp_name' => '/tmp/u', 'error' => 0, 'size' => 1],
        Uploads::toPhpFiles(['file3' => upload('C:\\foo\\bar/file3.txt', 'text/plain', 1, 0, '/tmp/u')])['file3'],
    );
    eq('c.txt', Uploads::toPhpFiles(['d' => upload('dir/sub/c.txt', 'text/plain', 1, 0, '/tmp/u')])['d']['name']);
    // Fields with no file leaf under them do not appear.
    eq([], Uploads::toPhpFiles(['e' => [], 'n' => ['x' => []], 's' => 'scalar']));
});

test('files: Request::getFiles() from a JSON context', function (): void {
    $ctx = jsonContext([
        'method' => 'POST',
        'parsed' => true,
        'uploads' => [
            'single' => upload('s.txt', 'text/plain', 3, 0, '/tmp/upload1'),
            'gallery' => [upload('g.png', 'image/png', 7, 0, '/tmp/upload2')],
        ],
    ]);
    $relay = (new MemoryRelay())->push(requestFrame($ctx, '{}'));
    $request = (new HttpWorker(new Worker($relay, false)))->waitRequest();
    eq(
        [
            'single' => ['name' => 's.txt', 'full_path' => 's.txt', 'type' => 'text/plain', 'tmp_name' => '/tmp/upload1', 'error' => 0, 'size' => 3],
            'gallery' => [
                'name' => [0 => 'g.png'],
                'full_path' => [0 => 'g.png'],
                'type' => [0 => 'image/png'],
                'tmp_name' => [0 => '/tmp/upload2'],
                'error' => [0 => 0],
                'size' => [0 => 7],
            ],
        ],
        $request->getFiles(),
    );
    eq([], (new Request())->getFiles());
});

// ---------------------------------------------------------------- PSR-7

test('psr7: ServerRequest mapping of a JSON context', function (): void {
    $tmp = tempnam(sys_get_temp_dir(), 'fastrr');
    file_put_contents($tmp, 'file contents');
    $uploads = [
        'doc' => ['name' => 'a.txt', 'mime' => 'text/plain', 'size' => 13, 'error' => 0, 'tmpName' => $tmp],
        'many' => [
            ['name' => 'b.bin', 'mime' => 'application/octet-stream', 'size' => 0, 'error' => 4, 'tmpName' => ''],
        ],
        'nested' => ['inner' => ['name' => 'c.txt', 'mime' => 'text/plain', 'size' => 13, 'error' => 0, 'tmpName' => $tmp]],
    ];
    $ctx = jsonContext([
        'method' => 'POST',
        'protocol' => 'HTTP/2.0',
        'headers' => [
            'Content-Type' => ['multipart/form-data; boundary=x'],
            'X-Many' => ['1', '2'],
            'Bad Header' => ['skipped'],
            'Content-Length' => ['42'],
            'Accept' => ['*/*'],
        ],
        'parsed' => true,
        'uploads' => $uploads,
    ]);
    $relay = (new MemoryRelay())->push(requestFrame($ctx, '{"field":"value"}'));
    $factory = new Nyholm\Psr7\Factory\Psr17Factory();
    $psrWorker = new PSR7Worker(new Worker($relay, false), $factory, $factory, $factory);
    $before = microtime(true);
    $r = $psrWorker->waitRequest();

    eq('POST', $r->getMethod());
    // Nyholm percent-encodes the brackets of the query.
    eq('http://example.com:8080/path/to?a=1&b%5B%5D=2&b%5B%5D=3', (string)$r->getUri());
    eq('2', $r->getProtocolVersion());
    eq(['1', '2'], $r->getHeader('x-many'));
    eq('multipart/form-data; boundary=x', $r->getHeaderLine('Content-Type'));
    ok(!$r->hasHeader('Bad Header'), 'invalid header name skipped');
    eq(['sid' => 'abc'], $r->getCookieParams());
    eq(['a' => '1', 'b' => ['2', '3']], $r->getQueryParams());
    eq(['field' => 'value'], $r->getParsedBody());
    eq('', (string)$r->getBody(), 'a parsed form has no body (the JSON tree is not one), as under php-fpm');
    eq('home', $r->getAttribute('route'));

    $server = $r->getServerParams();
    eq('10.0.0.7', $server['REMOTE_ADDR']);
    eq('POST', $server['REQUEST_METHOD']);
    eq('/path/to?a=1&b[]=2&b[]=3', $server['REQUEST_URI']);
    eq('a=1&b[]=2&b[]=3', $server['QUERY_STRING']);
    eq('HTTP/2.0', $server['SERVER_PROTOCOL']);
    eq('example.com:8080', $server['HTTP_HOST']);
    eq('2', $server['HTTP_X_MANY'], 'server params: the last of repeated headers, as php-fpm (getHeader keeps both)');
    eq('*/*', $server['HTTP_ACCEPT']);
    eq('multipart/form-data; boundary=x', $server['CONTENT_TYPE']);
    eq('42', $server['CONTENT_LENGTH']);
    ok(is_int($server['REQUEST_TIME']) && $server['REQUEST_TIME'] >= (int)$before, 'REQUEST_TIME');
    ok(is_float($server['REQUEST_TIME_FLOAT']) && $server['REQUEST_TIME_FLOAT'] >= $before, 'REQUEST_TIME_FLOAT');

    $files = $r->getUploadedFiles();
    eq('a.txt', $files['doc']->getClientFilename());
    eq('text/plain', $files['doc']->getClientMediaType());
    eq(13, $files['doc']->getSize());
    eq(UPLOAD_ERR_OK, $files['doc']->getError());
    eq('file contents', (string)$files['doc']->getStream());
    eq(UPLOAD_ERR_NO_FILE, $files['many'][0]->getError());
    eq('b.bin', $files['many'][0]->getClientFilename());
    eq('c.txt', $files['nested']['inner']->getClientFilename());
    unlink($tmp);
});

test('psr7: protocol versions and plain bodies', function (): void {
    $factory = new Nyholm\Psr7\Factory\Psr17Factory();
    foreach (['HTTP/1.0' => '1.0', 'HTTP/1.1' => '1.1', 'HTTP/2.0' => '2', 'HTTP/3.0' => '1.1'] as $wire => $psr) {
        $relay = (new MemoryRelay())->push(requestFrame(jsonContext(['protocol' => $wire, 'headers' => null]), 'raw'));
        $r = (new PSR7Worker(new Worker($relay, false), $factory, $factory, $factory))->waitRequest();
        eq($psr, $r->getProtocolVersion(), $wire);
        eq(null, $r->getParsedBody(), 'not parsed');
        eq('raw', (string)$r->getBody());
    }
});

test('psr7: responses, 1xx and large bodies', function (): void {
    $factory = new Nyholm\Psr7\Factory\Psr17Factory();
    $relay = (new MemoryRelay())->push(requestFrame(jsonContext()))->push(requestFrame(jsonContext()));
    $relay->onSend = function (Frame $frame, MemoryRelay $r): void {
        if ($frame->byte10 & Frame::PING) {
            $r->push(new Frame('', [], 0, Frame::PONG));
        }
    };
    $psrWorker = new PSR7Worker(new Worker($relay, false), $factory, $factory, $factory);

    $psrWorker->waitRequest();
    $psrWorker->respond($factory->createResponse(103)->withHeader('Link', '</a.css>; rel=preload'));
    $psrWorker->respond(
        $factory->createResponse(201)
            ->withHeader('Content-Type', 'application/json')
            ->withAddedHeader('X-Multi', ['a', 'b'])
            ->withBody($factory->createStream('{"created":true}')),
    );
    $frames = $relay->sentFrames();
    eq(Frame::STREAM, $frames[0]->byte10, '103 keeps the exchange open');
    eq('{"status":103,"headers":{"Link":["</a.css>; rel=preload"]}}', $frames[0]->payload);
    eq(
        '{"status":201,"headers":{"Content-Type":["application/json"],"X-Multi":["a","b"]}}{"created":true}',
        $frames[1]->payload,
    );
    eq(0, $frames[1]->byte10);

    // Over 10 MB: streamed in 1 MB chunks.
    $psrWorker->waitRequest();
    $size = PSR7Worker::SINGLE_FRAME_LIMIT + 5;
    $psrWorker->respond($factory->createResponse(200)->withBody($factory->createStream(str_repeat('b', $size))));
    $frames = array_slice($relay->sentFrames(), 2);
    $total = 0;
    foreach ($frames as $frame) {
        $total += strlen($frame->payload) - $frame->options[0];
    }
    eq($size, $total, 'all bytes sent');
    eq(12, count($frames), 'eleven chunks and a final frame');
    eq(0, end($frames)->byte10, 'final frame');
});

// ---------------------------------------------------------------- SuperglobalsWorker

/** A SuperglobalsWorker over a memory relay, with $_SERVER at boot as given. */
function superglobalsWorker(MemoryRelay $relay, array $bootServer): SuperglobalsWorker
{
    $saved = $_SERVER;
    $_SERVER = $bootServer;
    try {
        $worker = null;
        $log = captureLog(function () use ($relay, &$worker): void {
            $worker = new SuperglobalsWorker(new Worker($relay, false));
        });
        ok($log === '' || str_contains($log, 'runs under php-cli, which discards header()'), 'the one SAPI warning');
        return $worker;
    } finally {
        $_SERVER = $saved;
    }
}

test('superglobals: $_SERVER from a request, boot keys kept, request keys dropped', function (): void {
    $boot = ['PATH' => '/bin', 'SCRIPT_FILENAME' => '/app/worker.php', 'argv' => ['worker.php'], 'argc' => 1,
        'HTTP_STALE' => 'x', 'REQUEST_URI' => '/old', 'HTTPS' => 'on', 'CONTENT_TYPE' => 'old', 'REDIRECT_STATUS' => '200'];
    eq(['PATH' => '/bin', 'SCRIPT_FILENAME' => '/app/worker.php', 'argv' => ['worker.php'], 'argc' => 1],
        SuperglobalsWorker::bootServer($boot), 'boot $_SERVER');
    $request = new Request('10.0.0.7', 'HTTP/2.0', 'POST', 'https://example.com/shop/cart.php?x=1&y[]=2',
        ['Accept' => ['a/b', 'c/d'], 'Content-Type' => ['application/json'], 'Content-Length' => ['7'],
            'X_Forwarded_For' => ['spoof'], 'X-Forwarded-For' => ['1.2.3.4'], 'Proxy' => ['evil'],
            'Cookie' => ['a=1', 'b=2'], 'Authorization' => ['Basic ' . base64_encode('ann:s3:cret')]]);
    $server = SuperglobalsWorker::serverVars($request, ['PATH' => '/bin'], 1700000000.25);
    eq([
        'PATH' => '/bin',
        'REQUEST_METHOD' => 'POST',
        'REQUEST_URI' => '/shop/cart.php?x=1&y[]=2',
        'QUERY_STRING' => 'x=1&y[]=2',
        'CONTENT_TYPE' => 'application/json',
        'CONTENT_LENGTH' => '7',
        'DOCUMENT_URI' => '/shop/cart.php',
        'PATH_INFO' => '',
        'REMOTE_USER' => 'ann',
        'SERVER_PROTOCOL' => 'HTTP/2.0',
        'REQUEST_SCHEME' => 'https',
        'HTTPS' => 'on',
        'SERVER_NAME' => 'example.com',
        'SERVER_PORT' => '443',
        'REMOTE_ADDR' => '10.0.0.7',
        'SCRIPT_NAME' => '/shop/cart.php',
        'PHP_SELF' => '/shop/cart.php',
        'HTTP_HOST' => 'example.com',
        'HTTP_ACCEPT' => 'c/d', // repeated: the last, as nginx 1.22 + php-fpm
        'HTTP_CONTENT_TYPE' => 'application/json',
        'HTTP_CONTENT_LENGTH' => '7',
        'HTTP_X_FORWARDED_FOR' => '1.2.3.4', // X_Forwarded_For dropped, as nginx drops '_' names
        'HTTP_COOKIE' => 'a=1; b=2', // several Cookie headers joined
        'HTTP_AUTHORIZATION' => 'Basic ' . base64_encode('ann:s3:cret'),
        'PHP_AUTH_USER' => 'ann',
        'PHP_AUTH_PW' => 's3:cret',
        'REQUEST_TIME_FLOAT' => 1700000000.25,
        'REQUEST_TIME' => 1700000000,
    ], $server, '$_SERVER');

    $plain = SuperglobalsWorker::serverVars(new Request('::1', 'HTTP/1.0', 'GET', 'http://[::1]:8080'), [], 1.0);
    eq(['/', '', '[::1]', '8080', '[::1]:8080', 'http', false], [$plain['REQUEST_URI'], $plain['QUERY_STRING'],
        $plain['SERVER_NAME'], $plain['SERVER_PORT'], $plain['HTTP_HOST'], $plain['REQUEST_SCHEME'], isset($plain['HTTPS'])]);
    eq('80', SuperglobalsWorker::serverVars(new Request(uri: 'http://h/a%20b?'), [], 1.0)['SERVER_PORT']);
    eq('/a%20b?', SuperglobalsWorker::serverVars(new Request(uri: 'http://h/a%20b?'), [], 1.0)['REQUEST_URI'], 'empty query: "?" kept');
    $info = SuperglobalsWorker::serverVars(new Request(uri: 'http://h/index.php/a%20b/c?q=1'), [], 1.0);
    eq(['/index.php', '/a b/c', '/index.php/a b/c', '/index.php'],
        [$info['SCRIPT_NAME'], $info['PATH_INFO'], $info['PHP_SELF'], $info['DOCUMENT_URI']], 'PATH_INFO split after .php');
    $h1 = SuperglobalsWorker::serverVars(new Request(headers: ['Cookie' => ['a=1', 'b=2']]), [], 1.0);
    eq(['a=1; b=2', '', ''], [$h1['HTTP_COOKIE'], $h1['CONTENT_TYPE'], $h1['CONTENT_LENGTH']], 'HTTP/1.1: Cookie headers joined');
    eq(['d' => ['e' => 'arr', 'f' => 'x'], 'x' => '1', 's_p' => '"q"', 'v' => ' a+b'],
        PhpInput::cookies('d[e]=arr; d[f]=x; x=1; x=2;  s p="q"; v=%20a+b; =bad; ;'), 'PHP cookie rules');
});

test('superglobals: $_GET, $_POST, $_COOKIE, $_FILES, $_REQUEST and php://input', function (): void {
    $worker = superglobalsWorker(new MemoryRelay(), ['BOOT' => '1']);
    $request = new Request(
        method: 'POST',
        uri: 'http://h/p?a=1&a.b=2&arr[x]=g&arr[y]=g&list[]=1&e=%C3%A9+x',
        headers: ['Content-Type' => ['multipart/form-data; boundary=x'], 'Cookie' => ['sid=a%20b%3Bc; c.d=e; c_d=second']],
        body: '{"a":"post","arr":{"x":"p"},"list":["9"]}',
        parsed: true,
        uploads: ['f' => upload('x.txt', 'text/plain', 3, 0, '/tmp/up1')],
    );
    $worker->fillSuperglobals($request, 5.0);
    eq(['a' => '1', 'a_b' => '2', 'arr' => ['x' => 'g', 'y' => 'g'], 'list' => ['1'], 'e' => 'é x'], $_GET, '$_GET');
    eq(['a' => 'post', 'arr' => ['x' => 'p'], 'list' => ['9']], $_POST, '$_POST');
    eq(['a' => 'post', 'a_b' => '2', 'arr' => ['x' => 'p', 'y' => 'g'], 'list' => ['9'], 'e' => 'é x'], $_REQUEST, '$_REQUEST (GP)');
    eq(['sid' => 'a b;c', 'c_d' => 'e'], $_COOKIE, '$_COOKIE');
    eq(['f' => ['name' => 'x.txt', 'full_path' => 'x.txt', 'type' => 'text/plain', 'tmp_name' => '/tmp/up1', 'error' => 0, 'size' => 3]], $_FILES);
    eq('1', $_SERVER['BOOT']);
    eq('', file_get_contents('php://input'), 'a parsed body is not php://input');

    $worker->fillSuperglobals(new Request(method: 'PUT', uri: 'http://h/j', body: '{"k":1}'), 6.0);
    eq([[], [], [], [], []], [$_GET, $_POST, $_COOKIE, $_FILES, $_REQUEST], 'nothing left from the first request');
    eq('{"k":1}', file_get_contents('php://input'));
    $in = fopen('php://input', 'rb');
    eq('{"k', fread($in, 3));
    fseek($in, -2, SEEK_END);
    eq('1}', stream_get_contents($in));
    fclose($in);
    eq('{"K":1}', file_get_contents('php://filter/read=string.toupper/resource=php://input'));
    eq('', $_SERVER['CONTENT_TYPE'], 'no CONTENT_TYPE from the previous request (empty, as nginx passes it)');
    PhpStreamWrapper::setInput('');
});

test('superglobals: other php:// paths still work through the wrapper', function (): void {
    ok(PhpStreamWrapper::isInstalled(), 'installed');
    $m = fopen('php://memory', 'w+b');
    fwrite($m, 'hello world');
    rewind($m);
    eq('hello', fread($m, 5));
    ok(ftruncate($m, 3));
    rewind($m);
    eq('hel', stream_get_contents($m));
    eq(3, fstat($m)['size']);
    fclose($m);
    $t = fopen('php://temp/maxmemory:8', 'w+b');
    fwrite($t, str_repeat('x', 10));
    fwrite($t, 'yz');
    fseek($t, 8);
    eq('xxyz', stream_get_contents($t), 'temp spilled to a file');
    fclose($t);
    ob_start();
    $o = fopen('php://output', 'wb');
    fwrite($o, 'printed');
    fclose($o);
    eq('printed', ob_get_clean());
    eq('aGk=', file_get_contents('php://filter/read=convert.base64-encode/resource=data:text/plain,hi'));
    $f = fopen('php://filter/write=string.toupper/resource=php://memory', 'w+b');
    eq(3, fwrite($f, 'abc'));
    fclose($f);
    $e = fopen('php://stderr', 'wb');
    ok(is_resource($e) && fwrite($e, '') === 0, 'php://stderr');
    fclose($e);
    ok(@fopen('php://no-such-thing', 'rb') === false, 'unknown paths fail as before');
    eq(false, file_exists('php://memory'));
    $spl = new SplTempFileObject();
    $spl->fwrite('line');
    $spl->rewind();
    eq('line', $spl->fgets());
    $before = memory_get_usage();
    for ($i = 0; $i < 2000; $i++) {
        fclose(fopen('php://temp', 'w+b'));
    }
    ok(memory_get_usage() - $before < 4096, 'opening php://temp does not accumulate memory');
});

test('superglobals: response headers grouped, Status header, default Content-Type', function (): void {
    [$status, $headers] = SuperglobalsWorker::responseHeaders([
        'X-Powered-By: PHP', 'Set-Cookie: a=1', 'Location: /x', 'set-cookie: b=2; path=/', 'X-Empty:', 'garbage',
    ], 302);
    eq(302, $status);
    eq(['X-Powered-By' => ['PHP'], 'Set-Cookie' => ['a=1', 'b=2; path=/'], 'Location' => ['/x'], 'X-Empty' => [''],
        'Content-Type' => ['text/html; charset=UTF-8']], $headers);
    [$status, $headers] = SuperglobalsWorker::responseHeaders(['Status: 404 Not Found', 'Content-type: text/plain'], false);
    eq([404, ['Content-type' => ['text/plain']]], [$status, $headers]);
});

test('superglobals: serve() answers, a Throwable gives 500, output stays off stdout', function (): void {
    $relay = new MemoryRelay();
    $relay->push(requestFrame(jsonContext(['uri' => 'http://h/one?x=1', 'rawQuery' => 'x=1', 'cookies' => ['c' => 'v']])))
        ->push(requestFrame(jsonContext(['uri' => 'http://h/boom', 'rawQuery' => ''])))
        ->push(requestFrame(jsonContext(['uri' => 'http://h/two', 'rawQuery' => '', 'cookies' => null, 'headers' => null])))
        ->push(new Frame('{"stop":true}', [], Frame::CONTROL));
    $worker = superglobalsWorker($relay, []);
    $seen = [];
    $log = captureLog(function () use ($worker, &$seen): void {
        $worker->serve(function () use (&$seen): void {
            $seen[] = [$_SERVER['REQUEST_URI'], $_GET, $_COOKIE, $_SERVER['HTTP_X_MANY'] ?? null];
            ob_start(); // left open: flushed into the body
            echo 'page ', $_SERVER['REQUEST_URI'];
            http_response_code(202);
            if ($_SERVER['REQUEST_URI'] === '/boom') {
                throw new \RuntimeException('secret');
            }
        });
    });
    eq([['/one?x=1', ['x' => '1'], ['c' => 'v'], '2'], ['/boom', [], ['sid' => 'abc'], '2'], ['/two', [], [], null]], $seen);
    $frames = $relay->sentFrames();
    eq(3, count($frames));
    eq('{"status":202,"headers":{"Content-Type":["text/html; charset=UTF-8"]}}page /one?x=1', $frames[0]->payload);
    eq('{"status":500,"headers":{"Content-Type":["text/plain; charset=utf-8"]}}' . SuperglobalsWorker::ERROR_BODY, $frames[1]->payload);
    eq('{"status":202,"headers":{"Content-Type":["text/html; charset=UTF-8"]}}page /two', $frames[2]->payload);
    ok(str_contains($log, 'RuntimeException: secret'), 'the error is logged');
    eq(200, http_response_code(), 'status reset after the request');
    eq([[], []], [$_GET, $_COOKIE], 'superglobals cleared after serve()');
    ok(!PhpStreamWrapper::isInstalled(), 'php:// given back after serve()');
    PhpStreamWrapper::install();
});

test('superglobals: php-cgi worker, echo and exit(), frame stream stays valid', function (): void {
    $cgi = trim((string)shell_exec('command -v php-cgi'));
    if ($cgi === '') {
        echo "      (php-cgi not installed: skipped)\n";
        return;
    }
    $script = tempnam(sys_get_temp_dir(), 'sgw') . '.php';
    file_put_contents($script, '<?php require ' . var_export(dirname(__DIR__) . '/autoload.php', true) . ';'
        . '$w = new Fastrr\\Http\\SuperglobalsWorker(new Fastrr\\Worker(new Fastrr\\Relay\\StreamRelay()));'
        . 'echo "boot noise";'
        . '$w->serve(function () { echo "hi ", $_GET["n"] ?? "?"; header("X-A: 1"); setcookie("k", "v");'
        . ' if (($_GET["n"] ?? "") === "2") { header("Location: /x"); exit; } });');
    $in = Frame::pack('{"pid":true}', [], Frame::CONTROL)
        . requestFrame(jsonContext(['uri' => 'http://h/?n=1', 'rawQuery' => 'n=1']))->encode()
        . requestFrame(jsonContext(['uri' => 'http://h/?n=2', 'rawQuery' => 'n=2']))->encode();
    $proc = proc_open([$cgi, '-q', '-d', 'max_execution_time=0', $script], [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    fwrite($pipes[0], $in);
    fclose($pipes[0]);
    $stdout = stream_get_contents($pipes[1]);
    $stderr = stream_get_contents($pipes[2]);
    proc_close($proc);
    unlink($script);
    $frames = [];
    $relay = new StreamRelay(fopen('data://text/plain;base64,' . base64_encode($stdout), 'rb'), fopen('php://memory', 'wb'));
    for ($i = 0; $i < 3; $i++) {
        $frames[] = $relay->waitFrame();
    }
    eq(Frame::CONTROL, $frames[0]->flags & Frame::CONTROL, 'pid answer');
    $headers = '"X-A":["1"],"Set-Cookie":["k=v"],"Content-Type":["text/html; charset=UTF-8"]';
    eq('{"status":200,"headers":{' . $headers . '}}hi 1', $frames[1]->payload);
    eq('{"status":302,"headers":{"X-A":["1"],"Set-Cookie":["k=v"],"Location":["/x"],"Content-Type":["text/html; charset=UTF-8"]}}hi 2', $frames[2]->payload);
    eq(strlen($stdout), array_sum(array_map(fn (Frame $f) => strlen($f->encode()), $frames)), 'nothing but frames on stdout');
    ok(str_contains($stderr, 'boot noise'), 'stray output went to stderr');
});

require __DIR__ . '/jobs.php';
require __DIR__ . '/kv.php';
require __DIR__ . '/metrics.php';
require __DIR__ . '/logger.php';
require __DIR__ . '/grpc.php';
require __DIR__ . '/broadcast.php';

// ---------------------------------------------------------------- run

$filter = $argv[1] ?? '';
$passed = 0;
$failed = 0;
foreach ($tests as $name => $fn) {
    if ($filter !== '' && !str_contains($name, $filter)) {
        continue;
    }
    try {
        $fn();
        $passed++;
        echo "ok    $name\n";
    } catch (\Throwable $e) {
        $failed++;
        echo "FAIL  $name\n";
        $detail = $e instanceof AssertionFailed
            ? $e->getMessage() . "\n    at " . basename($e->getTrace()[0]['file'] ?? '?') . ':' . ($e->getTrace()[0]['line'] ?? '?')
            : get_class($e) . ': ' . $e->getMessage() . "\n" . $e->getTraceAsString();
        echo '      ' . str_replace("\n", "\n      ", $detail) . "\n";
    }
}
echo "($assertions assertions)\n";
echo "$passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
