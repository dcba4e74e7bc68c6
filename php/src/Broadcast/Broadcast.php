<?php

declare(strict_types=1);

namespace Fastrr\Broadcast;

use Fastrr\Broadcast\DTO\V1\Message;
use Fastrr\Broadcast\DTO\V1\Request;
use Fastrr\Broadcast\DTO\V1\Response;
use Fastrr\Broadcast\Exception\BroadcastException;
use Fastrr\Broadcast\Exception\InvalidArgumentException;
use Fastrr\Broadcast\Topic\Group;
use Fastrr\Broadcast\Topic\SingleTopic;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\Exception\RPCException;
use Fastrr\RPC\RPCInterface;

/**
 * Publishes to the server's `broadcast` brokers over RPC (`broadcast.Publish`, protobuf
 * broadcast.v1), as roadrunner-php/broadcast's Spiral\RoadRunner\Broadcast\Broadcast:
 *
 *   $broadcast = new Broadcast(RPC::create('tcp://127.0.0.1:6001'));   // or RPC::fromEnvironment()
 *   $broadcast->publish('chat.1', json_encode($event));
 *   $broadcast->join(['a', 'b'])->publish(['m1', 'm2']);
 *
 * One Message per payload, each naming every topic; the server publishes every
 * (topic, payload) on every broker. A server error (its Redis is down, ...) or a
 * connection failure throws BroadcastException with the server's text (roadrunner-php
 * lets the RPC exception through there; catching BroadcastException covers both).
 */
final class Broadcast implements BroadcastInterface
{
    private RPCInterface $rpc;

    public function __construct(RPCInterface $rpc)
    {
        $this->rpc = $rpc->withCodec(new ProtobufCodec());
    }

    /** @deprecated as in roadrunner-php/broadcast (plugin information is gone since RoadRunner 2.2) */
    public function isAvailable(): bool
    {
        throw new \RuntimeException(\sprintf('%s::isAvailable method is deprecated.', self::class));
    }

    public function publish($topics, $messages): void
    {
        $topics = self::strings($topics, 'topics');
        if ($topics === []) {
            throw new InvalidArgumentException('Unable to publish message to 0 topics');
        }
        $request = [];
        foreach (self::strings($messages, 'messages') as $message) {
            $request[] = new Message(['topics' => $topics, 'payload' => $message]);
        }
        if ($request === []) {
            throw new InvalidArgumentException('Unable to publish 0 messages');
        }
        try {
            /** @var Response $response */
            $response = $this->rpc->call('broadcast.Publish', new Request(['messages' => $request]), Response::class);
        } catch (RPCException $e) {
            throw new BroadcastException($e->getMessage(), 0, $e);
        }
        if (!$response->getOk()) {
            throw new BroadcastException('An error occurred while publishing message');
        }
    }

    public function join($topics): TopicInterface
    {
        $topics = self::strings($topics, 'topics');
        return match (\count($topics)) {
            0 => throw new InvalidArgumentException('Unable to connect to 0 topics'),
            1 => new SingleTopic($this, $topics[0]),
            default => new Group($this, $topics),
        };
    }

    /**
     * @param iterable<string>|string $values
     * @return list<string>
     */
    private static function strings(mixed $values, string $what): array
    {
        if (\is_string($values)) {
            return [$values];
        }
        if (!\is_iterable($values)) {
            throw new InvalidArgumentException(\sprintf(
                '$%s must be a string or an iterable of strings, got %s',
                $what,
                \get_debug_type($values),
            ));
        }
        $out = [];
        foreach ($values as $value) {
            if (!\is_string($value)) {
                throw new InvalidArgumentException(\sprintf(
                    'each of $%s must be a string, got %s',
                    $what,
                    \get_debug_type($value),
                ));
            }
            $out[] = $value;
        }
        return $out;
    }
}
