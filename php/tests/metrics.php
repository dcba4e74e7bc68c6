<?php

/*
 * Tests of Fastrr\Metrics, loaded by run.php (uses its harness and fakeRpc()
 * from jobs.php). Payload expectations are the JSON roadrunner-php/metrics
 * sends (rr-plugins.md §3.3), written out by hand.
 */

declare(strict_types=1);

use Fastrr\Frame;
use Fastrr\Metrics\Collector;
use Fastrr\Metrics\CollectorType;
use Fastrr\Metrics\Exception\MetricsException;
use Fastrr\Metrics\Metrics;
use Fastrr\Metrics\MetricsFactory;
use Fastrr\Metrics\MetricsOptions;
use Fastrr\Metrics\RetryMetrics;
use Fastrr\Metrics\SuppressExceptionsMetrics;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\Exception\ServiceException;

test('metrics: add/sub/observe/set send metrics.<Op> with JSON {name, value, labels}', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => 'true');
    // A client set to another codec is switched to JSON, which the metrics service speaks.
    $metrics = new Metrics($rpc->withCodec(new ProtobufCodec()));
    $metrics->add('orders', 1, ['paid', 'web']);
    $metrics->sub('queue', 2.5);
    $metrics->observe('latency', 0.25, ['/home']);
    $metrics->set('temp', -3);
    eq([
        ['metrics.Add', '{"name":"orders","value":1,"labels":["paid","web"]}', Frame::CODEC_JSON],
        ['metrics.Sub', '{"name":"queue","value":2.5,"labels":[]}', Frame::CODEC_JSON],
        ['metrics.Observe', '{"name":"latency","value":0.25,"labels":["/home"]}', Frame::CODEC_JSON],
        ['metrics.Set', '{"name":"temp","value":-3,"labels":[]}', Frame::CODEC_JSON],
    ], $calls->getArrayCopy());
});

test('metrics: label values are sent as a list of strings', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => 'true');
    (new Metrics($rpc))->add('hits', 1, ['status' => 200, 'ratio' => 0.5, 'route' => 'x']);
    eq('{"name":"hits","value":1,"labels":["200","0.5","x"]}', $calls[0][1]);
});

test('metrics: declare sends the collector; unregister a bare JSON string', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => 'true');
    $metrics = new Metrics($rpc);
    $metrics->declare('latency', Collector::histogram(0.1, 1, 5)->withNamespace('shop')->withSubsystem('web')
        ->withHelp('Request latency.')->withLabels('route', 'method'));
    $metrics->declare('temp', Collector::gauge());
    $metrics->unregister('temp');
    eq('metrics.Declare', $calls[0][0]);
    eq('{"name":"latency","collector":{"namespace":"shop","subsystem":"web","type":"histogram",'
        . '"help":"Request latency.","labels":["route","method"],"buckets":[0.1,1,5]}}', $calls[0][1]);
    eq('{"name":"temp","collector":{"namespace":"","subsystem":"","type":"gauge","help":"","labels":[],'
        . '"buckets":[]}}', $calls[1][1]);
    eq(['metrics.Unregister', '"temp"'], [$calls[2][0], $calls[2][1]]);
});

test('metrics: Collector is immutable; each factory sets its type', function (): void {
    $base = Collector::counter();
    $named = $base->withNamespace('a')->withLabels('x', 'y');
    ok($base !== $named, 'a copy');
    eq(['', []], [$base->toArray()['namespace'], $base->toArray()['labels']], 'the original is unchanged');
    eq(['a', ['x', 'y']], [$named->toArray()['namespace'], $named->toArray()['labels']]);
    eq([CollectorType::Counter, CollectorType::Gauge, CollectorType::Histogram, CollectorType::Summary],
        [Collector::counter()->type, Collector::gauge()->type, Collector::histogram()->type, Collector::summary()->type]);
    eq('{"namespace":"","subsystem":"","type":"summary","help":"","labels":[],"buckets":[]}',
        json_encode(Collector::summary()));
});

test('metrics: server errors become MetricsException with the server text', function (): void {
    [$rpc] = fakeRpc(fn (string $m) => ['error' => match ($m) {
        'metrics.Add' => 'undefined collector: nope',
        'metrics.Declare' => 'tried to register existing collector with the name `dup`',
        default => 'required labels for collector: hits',
    }]);
    $metrics = new Metrics($rpc);
    $e = throws(MetricsException::class, fn () => $metrics->add('nope', 1), 'undefined collector: nope');
    ok($e instanceof ServiceException, 'a ServiceException, as in roadrunner-metrics');
    throws(MetricsException::class, fn () => $metrics->observe('hits', 1), 'required labels for collector: hits');
    throws(MetricsException::class, fn () => $metrics->unregister('hits'));
    $metrics->declare('dup', Collector::gauge()); // older RoadRunner's duplicate error is not an error
});

test('metrics: RetryMetrics tries 1 + retryAttempts times, then throws', function (): void {
    $n = 0;
    [$rpc, $calls] = fakeRpc(function () use (&$n) {
        return ++$n < 3 ? ['error' => 'busy'] : 'true';
    });
    $metrics = (new MetricsFactory())->create($rpc, new MetricsOptions(retryAttempts: 3, retrySleepMicroseconds: 0));
    ok($metrics instanceof RetryMetrics, 'retries by default');
    $metrics->add('x', 1);
    eq(3, count($calls), 'two failures, then success');
    [$rpc, $calls] = fakeRpc(fn () => ['error' => 'undefined collector: x']);
    $retry = new RetryMetrics(new Metrics($rpc), 2, 0);
    throws(MetricsException::class, fn () => $retry->set('x', 1), 'undefined collector: x');
    eq(3, count($calls), '1 + 2 attempts');
});

test('metrics: SuppressExceptionsMetrics logs instead of throwing', function (): void {
    [$rpc, $calls] = fakeRpc(fn () => ['error' => 'undefined collector: x']);
    $quiet = (new MetricsFactory())->create($rpc, new MetricsOptions(0, 0, suppressExceptions: true));
    ok($quiet instanceof SuppressExceptionsMetrics);
    $quiet->add('x', 1);
    $quiet->declare('x', Collector::gauge());
    eq(2, count($calls), 'called, failed, nothing thrown');
    $psrLog = stream_resolve_include_path('Psr/Log/autoload.php');
    if ($psrLog === false) {
        echo "      (psr/log not installed: the logging part is skipped)\n";
        return;
    }
    require_once $psrLog;
    $logger = new class extends \Psr\Log\AbstractLogger {
        /** @var list<string> */
        public array $lines = [];

        public function log($level, $message, array $context = []): void
        {
            $this->lines[] = "$level: $message";
        }
    };
    (new SuppressExceptionsMetrics(new Metrics($rpc), $logger))->sub('x', 1);
    eq(["warning: [Metrics] Operation \"Sub\" failed: Error 'undefined collector: x' on "
        . MemoryRelay::class], $logger->lines);
});
