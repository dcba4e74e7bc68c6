<?php

/*
 * Tests of Fastrr\Jobs, loaded by run.php (uses its harness: test(), eq(),
 * hexEq(), throws(), MemoryRelay).
 *
 * Protobuf expectations were written from the encoding rules and checked
 * against Google's Python runtime (fastrr/jobs/proto.py, the server's own
 * messages); reply frames against Python's zlib.crc32/struct.
 */

declare(strict_types=1);

use Fastrr\Frame;
use Fastrr\Jobs\Consumer;
use Fastrr\Jobs\DTO\V1\DeclareRequest;
use Fastrr\Jobs\DTO\V1\HeaderValue;
use Fastrr\Jobs\DTO\V1\Job;
use Fastrr\Jobs\DTO\V1\Options as OptionsMessage;
use Fastrr\Jobs\DTO\V1\PBEmpty;
use Fastrr\Jobs\DTO\V1\Pipelines;
use Fastrr\Jobs\DTO\V1\PushBatchRequest;
use Fastrr\Jobs\DTO\V1\PushRequest;
use Fastrr\Jobs\DTO\V1\Stat;
use Fastrr\Jobs\DTO\V1\Stats;
use Fastrr\Jobs\Exception\JobsException;
use Fastrr\Jobs\Exception\ReceivedTaskException;
use Fastrr\Jobs\Jobs;
use Fastrr\Jobs\Options;
use Fastrr\Jobs\Queue;
use Fastrr\Jobs\Queue\BoltdbCreateInfo;
use Fastrr\Jobs\Queue\Driver;
use Fastrr\Jobs\Queue\MemoryCreateInfo;
use Fastrr\Jobs\Queue\Pipeline;
use Fastrr\Jobs\Task\ReceivedTask;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\RPC;
use Fastrr\Worker;

// ---------------------------------------------------------------- helpers

/**
 * An RPC client on a MemoryRelay that answers each call with $handler.
 *
 * @param callable(string $method, string $body): (string|array{error:string}) $handler
 * @return array{0: RPC, 1: ArrayObject} the client and the calls made [method, body, flags]
 */
function fakeRpc(callable $handler): array
{
    $calls = new ArrayObject();
    $relay = new MemoryRelay();
    $relay->onSend = static function (Frame $f, MemoryRelay $r) use ($handler, $calls): void {
        [$seq, $mlen] = $f->options;
        $method = substr($f->payload, 0, $mlen);
        $body = (string)substr($f->payload, $mlen);
        $calls[] = [$method, $body, $f->flags];
        $answer = $handler($method, $body);
        $error = is_array($answer);
        $r->push(new Frame($method . ($error ? $answer['error'] : $answer), [$seq, $mlen], $f->flags | ($error ? Frame::ERROR : 0)));
    };
    return [new RPC($relay), $calls];
}

function sequentialIds(): callable
{
    $n = 0;
    return static function () use (&$n): string {
        return sprintf('0190a4b2-0000-4000-8000-%012d', ++$n);
    };
}

/** A worker whose relay holds one job delivery. */
function jobWorker(array $context, string $body = ''): array
{
    $relay = new MemoryRelay();
    $ctx = json_encode($context, JSON_UNESCAPED_SLASHES);
    $relay->push(new Frame($ctx . $body, [strlen($ctx)], Frame::CODEC_RAW));
    return [new Consumer(new Worker($relay, false)), $relay];
}

/** The one frame the worker sent, as hex of its 16-byte header + the body. */
function onlyReply(MemoryRelay $relay): array
{
    eq(1, count($relay->sent), 'one reply frame');
    return [bin2hex(substr($relay->sent[0], 0, 16)), (string)substr($relay->sent[0], 16)];
}

const JOB_CTX = ['id' => 'j-1', 'job' => 'ack', 'driver' => 'memory', 'headers' => ['x-attempt' => ['1']], 'pipeline' => 'emails'];

// ---------------------------------------------------------------- protobuf

test('jobs proto: PushRequest bytes for a known Job', function (): void {
    $job = new Job([
        'job' => 'ack',
        'id' => '0190a4b2-0000-4000-8000-000000000001',
        'payload' => 'job-1',
        'headers' => ['x-attempt' => ['1', '2']],
        'options' => ['pipeline' => 'emails', 'delay' => 5, 'auto_ack' => true],
    ]);
    $expected = '0a55' . '0a0361636b'
        . '1224' . bin2hex('0190a4b2-0000-4000-8000-000000000001')
        . '1a056a6f622d31'
        . '2213' . '0a09782d617474656d7074' . '1206' . '0a0131' . '0a0132'
        . '2a0c' . '1206656d61696c73' . '1805' . '3001';
    hexEq($expected, (new PushRequest(['job' => $job]))->serializeToString());
    $back = PushRequest::decode(hex2bin($expected));
    eq('ack', $back->getJob()->getJob());
    eq('job-1', $back->getJob()->getPayload());
    eq(['1', '2'], $back->getJob()->getHeaders()['x-attempt']->getValue());
    eq('emails', $back->getJob()->getOptions()->getPipeline());
    eq(5, $back->getJob()->getOptions()->getDelay());
    eq(true, $back->getJob()->getOptions()->getAutoAck());
    eq(0, $back->getJob()->getOptions()->getPriority());
});

test('jobs proto: negative int64/int32 are 10-byte varints', function (): void {
    $job = new Job(['job' => 'n', 'id' => 'i', 'options' => new OptionsMessage([
        'priority' => -1, 'pipeline' => 'p', 'partition' => -2, 'offset' => 300,
    ])]);
    $hex = '0a016e1201692a1c08ffffffffffffffffff0112017048ac0250feffffffffffffffff01';
    hexEq($hex, $job->serializeToString());
    $o = Job::decode(hex2bin($hex))->getOptions();
    eq([-1, 300, -2], [$o->getPriority(), $o->getOffset(), $o->getPartition()]);
    eq("\x80\x01", OptionsMessage::varint(128));
    $pos = 0;
    eq(PHP_INT_MIN, OptionsMessage::readVarint(hex2bin('80808080808080808001'), $pos));
    eq(10, $pos);
});

test('jobs proto: PushBatchRequest, Pipelines, DeclareRequest, empty messages', function (): void {
    $batch = new PushBatchRequest(['jobs' => [
        new Job(['job' => 'a', 'id' => '1', 'options' => ['pipeline' => 'q']]),
        new Job(['job' => 'b', 'id' => '2', 'payload' => "\x00\xff", 'options' => ['pipeline' => 'q', 'priority' => 3]]),
    ]]);
    hexEq('0a0b0a01611201312a031201710a110a01621201321a0200ff2a050803120171', $batch->serializeToString());
    eq("\x00\xff", PushBatchRequest::decode($batch->serializeToString())->getJobs()[1]->getPayload());

    // repeated strings keep empty elements
    hexEq('0a01610a000a026263', (new Pipelines(['pipelines' => ['a', '', 'bc']]))->serializeToString());
    eq(['a', '', 'bc'], Pipelines::decode(hex2bin('0a01610a000a026263'))->getPipelines());

    // map entries always carry key and value, in insertion order
    $declare = new DeclareRequest(['pipeline' => ['prefetch' => '', 'priority' => '10', 'name' => 'x', 'driver' => 'memory']]);
    $hex = '0a0c0a08707265666574636812000a0e0a087072696f72697479120231300a090a046e616d651201780a100a0664726976657212066d656d6f7279';
    hexEq($hex, $declare->serializeToString());
    eq(['prefetch' => '', 'priority' => '10', 'name' => 'x', 'driver' => 'memory'], DeclareRequest::decode(hex2bin($hex))->getPipeline());

    // a set but empty sub-message is written; so is an empty header value
    $job = new Job(['job' => 'e', 'id' => '1', 'headers' => ['empty' => new HeaderValue()], 'options' => new OptionsMessage()]);
    hexEq('0a016512013122090a05656d70747912002a00', $job->serializeToString());
    eq('', (new PBEmpty())->serializeToString());
    eq('', (new Job())->serializeToString());
});

test('jobs proto: Stats decoding, uint64 and round trip', function (): void {
    $hex = '0a1d0a06656d61696c7312066d656d6f72791a01712003280130023801400a' . '0a0e0a01784085808080808080808001';
    $stats = Stats::decode(hex2bin($hex))->getStats();
    eq(2, count($stats));
    $s = $stats[0];
    eq(['emails', 'memory', 'q', 3, 1, 2, true, 10], [
        $s->getPipeline(), $s->getDriver(), $s->getQueue(), $s->getActive(),
        $s->getDelayed(), $s->getReserved(), $s->getReady(), $s->getPriority(),
    ]);
    eq(PHP_INT_MIN + 5, $stats[1]->getPriority(), 'uint64 2^63+5 wraps to a negative int');
    eq(false, $stats[1]->getReady());
    hexEq($hex, (new Stats(['stats' => $stats]))->serializeToString());
});

test('jobs proto: unknown fields are skipped, bad input is rejected', function (): void {
    // field 15 varint, 14 fixed64, 13 fixed32, 12 bytes, pipeline "p", then field 7 with the wrong wire type
    $bytes = hex2bin('7896017101020304050607086d01020304620201020a01703a0100');
    $stat = Stat::decode($bytes);
    eq(['p', false], [$stat->getPipeline(), $stat->getReady()]);
    eq(true, Stat::decode($bytes . hex2bin('3801'))->getReady());
    throws(\UnexpectedValueException::class, fn () => Stat::decode(hex2bin('0a05ab')), 'past the end');
    throws(\UnexpectedValueException::class, fn () => Stat::decode(hex2bin('2080')), 'truncated');
    throws(\UnexpectedValueException::class, fn () => Stat::decode(hex2bin('0b')), 'wire type');
    throws(\InvalidArgumentException::class, fn () => new Stat(['nope' => 1]), 'no field');
    // a field repeated on the wire: the last scalar wins, sub-messages merge
    $job = Job::decode(hex2bin('0a01610a01622a0208012a021801'));
    eq('b', $job->getJob());
    eq([1, 1], [$job->getOptions()->getPriority(), $job->getOptions()->getDelay()]);
});

test('jobs proto: ProtobufCodec', function (): void {
    $c = new ProtobufCodec();
    eq(Frame::CODEC_PROTO, $c->getIndex());
    eq('', $c->encode(''));
    eq('', $c->encode(null));
    eq("\x0a\x01a", $c->encode(new Pipelines(['pipelines' => ['a']])));
    eq(['a'], $c->decode("\x0a\x01a", Pipelines::class)->getPipelines());
    eq("\x0a\x01a", $c->decode("\x0a\x01a"));
    throws(\Fastrr\RPC\Exception\RPCException::class, fn () => $c->encode([1]));
    throws(\Fastrr\RPC\Exception\RPCException::class, fn () => $c->decode("\x0a\x05", Pipelines::class), 'invalid protobuf');
});

// ---------------------------------------------------------------- producer

test('jobs producer: push sends jobs.Push with the protobuf codec', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => '');
    $queue = new Queue('emails', $rpc, null, sequentialIds());
    $task = $queue->push('ack', 'job-1', (new Options(delay: 5, autoAck: true))->withHeader('x-attempt', ['1', 2]));
    eq('0190a4b2-0000-4000-8000-000000000001', $task->getId());
    eq(['emails', 'ack', 'job-1'], [$task->getPipeline(), $task->getName(), $task->getPayload()]);
    eq(['x-attempt' => ['1', '2']], $task->getHeaders());
    eq(1, count($calls));
    [$method, $body, $flags] = $calls[0];
    eq('jobs.Push', $method);
    eq(Frame::CODEC_PROTO, $flags);
    hexEq('0a550a0361636b1224' . bin2hex('0190a4b2-0000-4000-8000-000000000001')
        . '1a056a6f622d3122130a09782d617474656d707412060a01310a01322a0c1206656d61696c7318053001', $body);
});

test('jobs producer: create/dispatchMany, default options, errors', function (): void {
    [$rpc, $calls] = fakeRpc(fn (string $m) => $m === 'jobs.PushBatch' ? '' : ['error' => 'no such pipeline, requested: nope']);
    $queue = (new Queue('q', $rpc, null, sequentialIds()))->withDefaultOptions(new Options(priority: 7));
    $a = $queue->create('a', 'x')->withHeader('h', 'v')->withHeader('empty', [])->withDelay(3);
    eq([3, 7, false], [$a->getDelay(), $a->getPriority(), $a->getAutoAck()]);
    $b = $queue->create('b', 'y', new Options(priority: 2));
    $tasks = $queue->dispatchMany($a, $b);
    eq(2, count($tasks));
    eq('jobs.PushBatch', $calls[0][0]);
    $jobs = PushBatchRequest::decode($calls[0][1])->getJobs();
    eq(['h'], array_keys($jobs[0]->getHeaders()), 'headers without values are left out');
    eq([7, 3, 'q'], [$jobs[0]->getOptions()->getPriority(), $jobs[0]->getOptions()->getDelay(), $jobs[0]->getOptions()->getPipeline()]);
    eq(2, $jobs[1]->getOptions()->getPriority());
    eq($tasks[1]->getId(), $jobs[1]->getId());

    $e = throws(JobsException::class, fn () => $queue->push('a', 'x'), 'no such pipeline, requested: nope');
    ok($e->getPrevious() instanceof \Fastrr\RPC\Exception\ServiceException, 'the RPC error is the cause');
    ok(preg_match('/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/', Pipeline::uuid4()) === 1, 'uuid4');
    ok(Pipeline::uuid4() !== Pipeline::uuid4(), 'random ids');
});

test('jobs producer: Jobs declare, list, pause/resume, destroy, stat', function (): void {
    $stats = new Stats(['stats' => [new Stat(['pipeline' => 'a', 'ready' => true]), new Stat(['pipeline' => 'b'])]]);
    [$rpc, $calls] = fakeRpc(fn (string $m, string $body) => match ($m) {
        'jobs.List' => (new Pipelines(['pipelines' => ['a', 'b']]))->serializeToString(),
        'jobs.Destroy' => $body,
        'jobs.Stat' => $stats->serializeToString(),
        default => '',
    });
    $jobs = new Jobs($rpc);

    $queue = $jobs->create(new MemoryCreateInfo('mem', 5));
    eq('mem', $queue->getName());
    eq(['name' => 'mem', 'driver' => 'memory', 'priority' => '5', 'prefetch' => '100000'], DeclareRequest::decode($calls[0][1])->getPipeline());
    $jobs->create(new BoltdbCreateInfo('disk', 'jobs.db'));
    eq(['name' => 'disk', 'driver' => 'boltdb', 'priority' => '10', 'prefetch' => '10000', 'file' => 'jobs.db', 'permissions' => '493'],
        DeclareRequest::decode($calls[1][1])->getPipeline());
    eq(['flag' => 'true', 'n' => '1', 'list' => '["x"]', 'd' => 'memory'], Jobs::toStringMap(['flag' => true, 'n' => 1, 'list' => ['x'], 'd' => Driver::Memory]));

    eq(['a', 'b'], $jobs->list());
    eq(2, count($jobs));
    eq(['a', 'b'], array_keys(iterator_to_array($jobs)));
    eq('', $calls[2][1], 'jobs.List sends an empty body');

    $jobs->pause('a', $jobs->connect('b'));
    $jobs->resume('a');
    eq(['a', 'b'], Pipelines::decode($calls[5][1])->getPipelines());
    eq(['jobs.Pause', 'jobs.Resume'], [$calls[5][0], $calls[6][0]]);
    eq(['a', 'b'], $jobs->destroy('a', 'b'));

    eq(false, $jobs->connect('a')->isPaused());
    eq(true, $jobs->connect('b')->isPaused());
    eq(false, $jobs->connect('c')->isPaused(), 'no stat: not paused');
    eq(null, $jobs->connect('c')->getPipelineStat());
    $jobs->connect('a')->pause();
    $last = $calls[count($calls) - 1];
    eq(['jobs.Pause', ['a']], [$last[0], Pipelines::decode($last[1])->getPipelines()]);
    foreach ($calls as [, , $flags]) {
        eq(Frame::CODEC_PROTO, $flags, 'every jobs.* call uses the protobuf codec');
    }
    throws(\InvalidArgumentException::class, fn () => new MemoryCreateInfo('x', 0));
});

// ---------------------------------------------------------------- consumer

test('jobs consumer: a delivery becomes a ReceivedTask', function (): void {
    [$consumer] = jobWorker(JOB_CTX + ['queue' => 'default'], "payload\x00bytes");
    $task = $consumer->waitTask();
    eq(['j-1', 'ack', 'emails', 'default', Driver::Memory, "payload\x00bytes"], [
        $task->getId(), $task->getName(), $task->getPipeline(), $task->getQueue(), $task->getDriver(), $task->getPayload(),
    ]);
    eq(['x-attempt' => ['1']], $task->getHeaders());
    eq(true, $task->hasHeader('x-attempt'));
    eq(false, $task->hasHeader('nope'));
    eq('1', $task->getHeaderLine('x-attempt'));
    eq([], $task->getHeader('nope'));
    eq(false, $task->isCompleted());

    [$consumer] = jobWorker(['id' => 'j', 'job' => 'x', 'headers' => null, 'driver' => 'redis-ish']);
    $task = $consumer->waitTask();
    eq(['unknown', 'unknown', Driver::Unknown, [], ''], [$task->getPipeline(), $task->getQueue(), $task->getDriver(), $task->getHeaders(), $task->getPayload()]);

    $relay = new MemoryRelay();
    $relay->push(new Frame('{"stop":true}', [], Frame::CONTROL));
    eq(null, (new Consumer(new Worker($relay, false)))->waitTask());
});

test('jobs consumer: a kafka delivery becomes a KafkaReceivedTask', function (): void {
    $ctx = ['id' => 'k-1', 'job' => 'ack', 'driver' => 'kafka', 'headers' => ['h' => ['v']], 'pipeline' => 'orders',
            'queue' => 'orders-topic', 'topic' => 'orders-topic', 'partition' => 3, 'offset' => 1234567890123];
    [$consumer, $relay] = jobWorker($ctx, 'body');
    $task = $consumer->waitTask();
    ok($task instanceof \Fastrr\Jobs\Task\KafkaReceivedTask, 'a KafkaReceivedTask');
    eq(['k-1', 'orders', 'orders-topic', Driver::Kafka, 'orders-topic', 3, 1234567890123, ['h' => ['v']], 'body'], [
        $task->getId(), $task->getPipeline(), $task->getQueue(), $task->getDriver(), $task->getTopic(),
        $task->getPartition(), $task->getOffset(), $task->getHeaders(), $task->getPayload(),
    ]);
    $task->ack();
    eq(['140014000000e621fef6000000000000', '{"type":2,"data":[]}'], onlyReply($relay), 'answers as any task');

    [$consumer] = jobWorker(['id' => 'k-2', 'job' => 'x', 'driver' => 'kafka', 'headers' => [], 'queue' => 'q']);
    $task = $consumer->waitTask();
    eq(['q', 0, 0], [$task->getTopic(), $task->getPartition(), $task->getOffset()], 'defaults: topic = queue');
});

test('jobs producer: KafkaCreateInfo sends the keys spiral/roadrunner-jobs sends', function (): void {
    $info = new \Fastrr\Jobs\Queue\KafkaCreateInfo('k', brokers: ['10.0.0.1:9092'], priority: 3,
        producerOptions: new \Fastrr\Jobs\Queue\Kafka\ProducerOptions(
            requiredAcks: \Fastrr\Jobs\Queue\Kafka\Acks::LeaderAck, requestTimeout: new \DateInterval('PT1M5S'),
            compressionCodec: \Fastrr\Jobs\Queue\Kafka\CompressionCodec::Zstd),
        consumerOptions: new \Fastrr\Jobs\Queue\Kafka\ConsumerOptions(topics: ['a'], consumePartitions: [
            new \Fastrr\Jobs\Queue\Kafka\ConsumePartition('b', 2, new \Fastrr\Jobs\Queue\Kafka\ConsumerOffset(
                \Fastrr\Jobs\Queue\Kafka\OffsetType::At, 5))]),
        groupOptions: new \Fastrr\Jobs\Queue\Kafka\GroupOptions('g'));
    eq('{"name":"k","driver":"kafka","priority":3,"brokers":["10.0.0.1:9092"],"auto_create_topics":false,'
        . '"producer_options":{"disable_idempotent":false,"max_message_bytes":1000012,"request_timeout":"65s",'
        . '"required_acks":"LeaderAck","compression_codec":"zstd"},"consumer_options":{"topics":["a"],'
        . '"consume_regexp":false,"max_fetch_message_size":50000,"min_fetch_message_size":1,'
        . '"consumer_offset":{"type":"AtStart","value":1},"consume_partitions":{"b":{"2":{"type":"At","value":5}}}},'
        . '"group_options":{"group_id":"g","block_rebalance_on_poll":false}}', json_encode($info));
    throws(\InvalidArgumentException::class, fn () => new \Fastrr\Jobs\Queue\Kafka\ConsumerOptions());
});

test('jobs consumer: an unreadable delivery is answered with an error frame', function (): void {
    [$consumer, $relay] = jobWorker(['job' => 'no-id', 'headers' => []]);
    throws(ReceivedTaskException::class, fn () => $consumer->waitTask(), 'no "id"');
    eq('1340', bin2hex(substr($relay->sent[0], 0, 2)), 'ERROR frame, no options');
    eq('the task context has no "id"', substr($relay->sent[0], 12));
});

test('jobs consumer: reply frames are byte-exact with spiral/roadrunner-jobs', function (): void {
    $cases = [
        ['140014000000e621fef6000000000000', '{"type":2,"data":[]}', fn ($t) => $t->ack(), []],
        ['140014000000e621fef6000000000000', '{"type":0,"data":[]}', fn ($t) => $t->complete(), []],
        ['140048000000fc912577000000000000', '{"type":3,"data":{"message":"nacked","requeue":false,"delay_seconds":0}}',
            fn ($t) => $t->nack('nacked'), ['x' => ['kept out of nack']]],
        ['140046000000cfe6fa97000000000000', '{"type":3,"data":{"message":"again","requeue":true,"delay_seconds":3}}',
            fn ($t) => $t->withDelay(3)->nack('again', true), []],
        ['140068000000c23e17d7000000000000',
            '{"type":4,"data":{"message":"retry","delay_seconds":7,"headers":{"x-attempt":["1"],"x-requeued":["1"]}}}',
            fn ($t) => $t->withDelay(7)->withHeader('x-requeued', '1')->requeue('retry'), ['x-attempt' => ['1']]],
        ['14003300000061b61bcb000000000000', '{"type":4,"data":{"message":"r","delay_seconds":0}}', fn ($t) => $t->requeue('r'), []],
        ['14004d000000ce61fb40000000000000', '{"type":1,"data":{"message":"a\/b \u00e9","requeue":false,"delay_seconds":0}}',
            fn ($t) => $t->fail('a/b é'), []],
        ['14005800000063c63c27000000000000', '{"type":1,"data":{"message":"x","requeue":true,"delay_seconds":2,"headers":{"h":["v"]}}}',
            fn ($t) => $t->withDelay(2)->fail('x', true), ['h' => ['v']]],
    ];
    foreach ($cases as [$head, $body, $act, $headers]) {
        [$consumer, $relay] = jobWorker(['headers' => $headers] + JOB_CTX);
        $act($consumer->waitTask());
        eq([$head, $body], onlyReply($relay), $body);
    }
});

test('jobs consumer: one answer per task, shared by its copies', function (): void {
    [$consumer, $relay] = jobWorker(JOB_CTX);
    $task = $consumer->waitTask();
    $task->withDelay(1)->nack('n');
    ok($task->isCompleted() && $task->isFails() && !$task->isSuccessful(), 'the original is completed too');
    $task->ack();
    $task->requeue('again');
    eq(1, count($relay->sent), 'later answers are not sent');

    [$consumer] = jobWorker(JOB_CTX);
    $task = $consumer->waitTask();
    $task->ack();
    ok($task->isSuccessful(), 'ack is a success');
    throws(\InvalidArgumentException::class, fn () => $task->withDelay(-1));
    eq('{"type":3,"data":{"message":"\ufffd","requeue":false,"delay_seconds":0}}',
        ReceivedTask::replyBody(3, ['message' => "\xff", 'requeue' => false, 'delay_seconds' => 0]), 'invalid UTF-8 is replaced');
});
