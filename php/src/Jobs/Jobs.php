<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

use Fastrr\Jobs\DTO\V1\DeclareRequest;
use Fastrr\Jobs\DTO\V1\Pipelines;
use Fastrr\Jobs\Exception\JobsException;
use Fastrr\Jobs\Queue\CreateInfoInterface;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\RPC;
use Fastrr\RPC\RPCInterface;

/**
 * The producer's entry point: pipelines over RPC (`jobs.*`, protobuf codec).
 *
 *   $jobs = new Jobs(RPC::create('tcp://127.0.0.1:6001'));   // or new Jobs(): RR_RPC
 *   $queue = $jobs->connect('emails');
 *   foreach ($jobs as $name => $queue) { ... }               // jobs.List
 */
final class Jobs implements JobsInterface
{
    private readonly RPCInterface $rpc;

    public function __construct(?RPCInterface $rpc = null)
    {
        $this->rpc = ($rpc ?? RPC::fromEnvironment())->withCodec(new ProtobufCodec());
    }

    public function connect(string $queue, ?OptionsInterface $options = null): QueueInterface
    {
        return new Queue($queue, $this->rpc, $options);
    }

    /**
     * Declares a pipeline (`jobs.Declare`) and connects to it. The server
     * starts consuming it only if it is listed in `jobs.consume`: call
     * resume() otherwise.
     */
    public function create(CreateInfoInterface $info, ?OptionsInterface $options = null): QueueInterface
    {
        $this->call('jobs.Declare', new DeclareRequest(['pipeline' => self::toStringMap($info->toArray())]));
        return $this->connect($info->getName(), $options);
    }

    public function pause(QueueInterface|string $queue, QueueInterface|string ...$queues): void
    {
        $this->call('jobs.Pause', new Pipelines(['pipelines' => self::names($queue, ...$queues)]));
    }

    public function resume(QueueInterface|string $queue, QueueInterface|string ...$queues): void
    {
        $this->call('jobs.Resume', new Pipelines(['pipelines' => self::names($queue, ...$queues)]));
    }

    /**
     * Stops and removes pipelines (`jobs.Destroy`, which RoadRunner's PHP
     * library does not offer; its CLI does). Returns the names destroyed.
     *
     * @return list<string>
     * @throws JobsException
     */
    public function destroy(QueueInterface|string $queue, QueueInterface|string ...$queues): array
    {
        $answer = $this->call(
            'jobs.Destroy',
            new Pipelines(['pipelines' => self::names($queue, ...$queues)]),
            Pipelines::class,
        );
        \assert($answer instanceof Pipelines);
        return $answer->getPipelines();
    }

    /**
     * The names of all pipelines the server has (`jobs.List`, no particular order).
     *
     * @return list<string>
     * @throws JobsException
     */
    public function list(): array
    {
        $answer = $this->call('jobs.List', '', Pipelines::class);
        \assert($answer instanceof Pipelines);
        return $answer->getPipelines();
    }

    /**
     * @return \Generator<string, QueueInterface>
     * @throws JobsException
     */
    public function getIterator(): \Generator
    {
        foreach ($this->list() as $name) {
            yield $name => $this->connect($name);
        }
    }

    public function count(): int
    {
        return \count($this->list());
    }

    /**
     * The Declare map is string => string: ints as decimal, bools as
     * "true"/"false", arrays and JsonSerializable as JSON (as RoadRunner's PHP does).
     *
     * @param array<string, mixed> $map
     * @return array<string, string>
     */
    public static function toStringMap(array $map): array
    {
        $out = [];
        foreach ($map as $key => $value) {
            $out[(string)$key] = match (true) {
                \is_string($value) => $value,
                \is_int($value) => (string)$value,
                \is_bool($value) => $value ? 'true' : 'false',
                $value instanceof \BackedEnum => (string)$value->value,
                $value instanceof \Stringable => (string)$value,
                \is_array($value), $value instanceof \JsonSerializable => \json_encode($value, \JSON_THROW_ON_ERROR),
                default => throw new \InvalidArgumentException(\sprintf(
                    'cannot send a %s as the declare option "%s"',
                    \get_debug_type($value),
                    $key,
                )),
            };
        }
        return $out;
    }

    /** @return list<string> */
    private static function names(QueueInterface|string ...$queues): array
    {
        return \array_map(static fn (QueueInterface|string $q): string => \is_string($q) ? $q : $q->getName(), $queues);
    }

    private function call(string $method, mixed $request, ?string $answer = null): mixed
    {
        try {
            return $this->rpc->call($method, $request, $answer);
        } catch (\Throwable $e) {
            throw new JobsException($e->getMessage(), (int)$e->getCode(), $e);
        }
    }
}
