<?php

declare(strict_types=1);

namespace Fastrr\RPC;

use Fastrr\Frame;
use Fastrr\Relay\Relay;
use Fastrr\Relay\RelayException;
use Fastrr\Relay\RelayInterface;
use Fastrr\RPC\Codec\JsonCodec;
use Fastrr\RPC\Exception\RPCException;
use Fastrr\RPC\Exception\ServiceException;

/**
 * goridge RPC client, wire-compatible with spiral/goridge's RPC:
 *
 *   request   flags = codec, options [seq, strlen(method)], payload = method . encode(payload)
 *   answer    options [seq, strlen(method)], payload = method . body; ERROR flag: body is the error text
 *
 * seq is one counter per process, starting at 1, shared by every instance (as
 * goridge's static counter) and moved on after each answer; an answer whose
 * options[0] is not our seq is a protocol error.
 *
 *   $rpc = RPC::fromEnvironment();                       // RR_RPC, default tcp://127.0.0.1:6001
 *   $workers = $rpc->call('informer.Workers', 'http');   // ['workers' => [...]]
 *   $rpc->withServicePrefix('resetter')->call('reset', 'http');
 */
final class RPC implements RPCInterface
{
    public const DEFAULT_ADDRESS = 'tcp://127.0.0.1:6001';

    private static int $seq = 1;

    private ?string $service = null;

    public function __construct(
        private readonly RelayInterface $relay,
        private CodecInterface $codec = new JsonCodec(),
    ) {
    }

    /**
     * @param string $connection tcp://host:port or unix:///path
     * @throws RelayException when nothing answers there
     */
    public static function create(string $connection, ?CodecInterface $codec = null): self
    {
        if (!\str_starts_with($connection, 'tcp://') && !\str_starts_with($connection, 'unix://')) {
            throw new \InvalidArgumentException(\sprintf(
                'invalid RPC address "%s": expected tcp://host:port or unix:///path',
                $connection,
            ));
        }
        return new self(Relay::create($connection), $codec ?? new JsonCodec());
    }

    /**
     * A client for the address the server gave this worker in RR_RPC.
     */
    public static function fromEnvironment(?CodecInterface $codec = null): self
    {
        $dsn = $_SERVER['RR_RPC'] ?? $_ENV['RR_RPC'] ?? \getenv('RR_RPC');
        if (!\is_string($dsn) || $dsn === '') {
            $dsn = self::DEFAULT_ADDRESS;
        }
        return self::create($dsn, $codec);
    }

    public function withServicePrefix(string $service): self
    {
        $rpc = clone $this;
        $rpc->service = $service;
        return $rpc;
    }

    public function withCodec(CodecInterface $codec): self
    {
        $rpc = clone $this;
        $rpc->codec = $codec;
        return $rpc;
    }

    public function getRelay(): RelayInterface
    {
        return $this->relay;
    }

    public function call(string $method, mixed $payload, mixed $options = null): mixed
    {
        if ($this->service !== null) {
            $method = $this->service . '.' . \ucfirst($method);
        }
        $seq = self::$seq;
        try {
            $this->relay->send(new Frame(
                $method . $this->codec->encode($payload),
                [$seq, \strlen($method)],
                $this->codec->getIndex(),
            ));
            $frame = $this->relay->waitFrame();
        } catch (RelayException $e) {
            throw new RPCException(\sprintf('RPC call %s failed: %s', $method, $e->getMessage()), 0, $e);
        }
        if (\count($frame->options) !== 2) {
            throw new RPCException('Invalid RPC frame, options missing');
        }
        if ($frame->options[0] !== $seq) {
            throw new RPCException(\sprintf(
                'Invalid RPC frame, sequence mismatch: expected %d, got %d',
                $seq,
                $frame->options[0],
            ));
        }
        self::$seq++;

        $body = (string)\substr($frame->payload, $frame->options[1]);
        if ($frame->flags & Frame::ERROR) {
            throw new ServiceException(\sprintf("Error '%s' on %s", $body, $this->describeRelay()));
        }
        return $this->codec->decode($body, $options);
    }

    private function describeRelay(): string
    {
        return \method_exists($this->relay, 'getAddress') ? $this->relay->getAddress() : $this->relay::class;
    }
}
