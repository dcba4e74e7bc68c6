<?php

declare(strict_types=1);

namespace Fastrr\KeyValue;

use Fastrr\KeyValue\Serializer\SerializerInterface;
use Fastrr\RPC\RPC;
use Fastrr\RPC\RPCInterface;

/**
 * Opens named storages of the server's `kv` section:
 *
 *   $factory = new Factory(RPC::create('tcp://127.0.0.1:6001'));   // or new Factory(): RR_RPC
 *   $cache = $factory->select('sessions');
 *
 * select() does not call the server; an undefined storage raises
 * StorageException on the first call.
 */
final class Factory
{
    private readonly RPCInterface $rpc;

    public function __construct(?RPCInterface $rpc = null, private ?SerializerInterface $serializer = null)
    {
        $this->rpc = $rpc ?? RPC::fromEnvironment();
    }

    public function withSerializer(SerializerInterface $serializer): self
    {
        $self = clone $this;
        $self->serializer = $serializer;
        return $self;
    }

    public function select(string $name): StorageInterface
    {
        return new Cache($this->rpc, $name, $this->serializer);
    }
}
