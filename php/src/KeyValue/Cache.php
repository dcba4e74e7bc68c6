<?php

declare(strict_types=1);

namespace Fastrr\KeyValue;

use Fastrr\Jobs\DTO\V1\Message;
use Fastrr\KeyValue\DTO\V1\Item;
use Fastrr\KeyValue\DTO\V1\Request;
use Fastrr\KeyValue\DTO\V1\Response;
use Fastrr\KeyValue\Exception\InvalidArgumentException;
use Fastrr\KeyValue\Exception\KeyValueException;
use Fastrr\KeyValue\Exception\NotImplementedException;
use Fastrr\KeyValue\Exception\StorageException;
use Fastrr\KeyValue\Serializer\DefaultSerializer;
use Fastrr\KeyValue\Serializer\SerializerInterface;
use Fastrr\RPC\Codec\ProtobufCodec;
use Fastrr\RPC\Exception\RPCException;
use Fastrr\RPC\Exception\ServiceException;
use Fastrr\RPC\RPCInterface;

/**
 * A PSR-16 cache over one storage of the server's `kv` section (`kv.*` RPC,
 * protobuf codec), the same calls and value bytes as spiral/roadrunner-kv:
 * values written by either library are read by the other.
 *
 *   $cache = (new Factory(RPC::create('tcp://127.0.0.1:6001')))->select('users');
 *   $cache->set('user:1', $row, 300);     // 5 minutes
 *   $row = $cache->get('user:1');          // null once expired
 *
 * Every method is one RPC round trip; getMultiple() / setMultiple() send
 * all keys in one call.
 */
final class Cache implements StorageInterface
{
    private readonly RPCInterface $rpc;
    private SerializerInterface $serializer;

    public function __construct(RPCInterface $rpc, private readonly string $name, ?SerializerInterface $serializer = null)
    {
        $this->rpc = $rpc->withCodec(new ProtobufCodec());
        $this->serializer = $serializer ?? new DefaultSerializer();
    }

    public function getName(): string
    {
        return $this->name;
    }

    public function getSerializer(): SerializerInterface
    {
        return $this->serializer;
    }

    public function withSerializer(SerializerInterface $serializer): self
    {
        $self = clone $this;
        $self->serializer = $serializer;
        return $self;
    }

    public function get(string $key, mixed $default = null): mixed
    {
        // The hot call of a cache: the request is written and the answer read
        // without message objects (a third of this library's time per call).
        self::checkKey($key);
        $item = "\x0a" . Message::varint(\strlen($key)) . $key;
        $answer = $this->send('kv.MGet', "\x0a" . Message::varint(\strlen($this->name)) . $this->name
            . "\x12" . Message::varint(\strlen($item)) . $item);
        $value = self::valueOf($answer, $key);
        return $value === null ? $default : $this->serializer->unserialize($value);
    }

    public function getMultiple(iterable $keys, mixed $default = null): iterable
    {
        $keys = self::keys($keys);
        $result = \array_fill_keys($keys, $default);
        if ($keys === []) {
            return $result;
        }
        foreach ($this->call('kv.MGet', $keys)->getItems() as $item) {
            if (\array_key_exists($item->key, $result)) {
                $result[$item->key] = $this->serializer->unserialize($item->value);
            }
        }
        return $result;
    }

    public function has(string $key): bool
    {
        foreach ($this->call('kv.Has', [$key])->getItems() as $item) {
            if ($item->key === $key) {
                return true;
            }
        }
        return false;
    }

    public function set(string $key, mixed $value, null|int|\DateInterval $ttl = null): bool
    {
        return $this->setMultiple([$key => $value], $ttl);
    }

    public function setMultiple(iterable $values, null|int|\DateInterval $ttl = null): bool
    {
        $timeout = self::timeout($ttl);
        $items = [];
        foreach ($values as $key => $value) {
            // PHP turns numeric string keys of an array into ints: take them back as strings.
            $key = \is_int($key) ? (string)$key : $key;
            self::checkKey($key);
            $items[] = new Item(['key' => $key, 'value' => $this->serializer->serialize($value), 'timeout' => $timeout]);
        }
        if ($items === []) {
            return true;
        }
        $this->send('kv.Set', new Request(['storage' => $this->name, 'items' => $items]));
        return true;
    }

    public function delete(string $key): bool
    {
        return $this->deleteMultiple([$key]);
    }

    public function deleteMultiple(iterable $keys): bool
    {
        $keys = self::keys($keys);
        if ($keys !== []) {
            $this->call('kv.Delete', $keys);
        }
        return true;
    }

    public function clear(): bool
    {
        $this->send('kv.Clear', new Request(['storage' => $this->name]));
        return true;
    }

    public function getTtl(string $key): ?\DateTimeInterface
    {
        foreach ($this->getMultipleTtl([$key]) as $expires) {
            return $expires;
        }
        return null;
    }

    public function getMultipleTtl(iterable $keys = []): iterable
    {
        $keys = self::keys($keys);
        $result = \array_fill_keys($keys, null);
        if ($keys === []) {
            return $result;
        }
        foreach ($this->call('kv.TTL', $keys)->getItems() as $item) {
            if (\array_key_exists($item->key, $result) && $item->timeout !== '') {
                $result[$item->key] = self::parseTime($item->timeout);
            }
        }
        return $result;
    }

    /**
     * Changes the expiry of existing keys without touching their values
     * (`kv.MExpire`; roadrunner-kv has no such method).
     *
     * @param iterable<string> $keys
     */
    public function expire(iterable $keys, int|\DateInterval $ttl): bool
    {
        $items = [];
        $timeout = self::timeout($ttl);
        foreach (self::keys($keys) as $key) {
            $items[] = new Item(['key' => $key, 'timeout' => $timeout]);
        }
        if ($items !== []) {
            $this->send('kv.MExpire', new Request(['storage' => $this->name, 'items' => $items]));
        }
        return true;
    }

    /** @param list<string> $keys */
    private function call(string $method, array $keys): Response
    {
        $items = [];
        foreach ($keys as $key) {
            $items[] = new Item(['key' => $key]);
        }
        return $this->send($method, new Request(['storage' => $this->name, 'items' => $items]));
    }

    /**
     * @return ($request is Request ? Response : string) a raw request gets the raw answer
     */
    private function send(string $method, Request|string $request): Response|string
    {
        try {
            $response = $this->rpc->call($method, $request, \is_string($request) ? null : Response::class);
        } catch (ServiceException $e) {
            $message = $e->getMessage();
            if (\str_contains($message, 'no such storage')) {
                throw new StorageException(\sprintf(
                    'Storage "%s" has not been defined; add it to the kv section of the server config: %s',
                    $this->name,
                    $message,
                ), 0, $e);
            }
            if (\str_contains($message, '_plugin_ttl')) {
                throw new NotImplementedException($message, 0, $e);
            }
            throw new KeyValueException($message, 0, $e);
        } catch (RPCException $e) {
            throw new KeyValueException($e->getMessage(), 0, $e);
        }
        \assert($response instanceof Response || \is_string($response));
        return $response;
    }

    /**
     * The value of $key in a serialized kv.v1.Response, or null when the
     * answer has no item for it (a missing key).
     */
    private static function valueOf(string $answer, string $key): ?string
    {
        $pos = 0;
        $end = \strlen($answer);
        try {
            while ($pos < $end) {
                $tag = Message::readVarint($answer, $pos);
                if ($tag !== 0x0a) {  // not `items`: a newer server's field, skipped
                    self::skip($answer, $pos, $tag & 7);
                    continue;
                }
                $stop = $pos + Message::readVarint($answer, $pos);
                $itemKey = '';
                $value = '';
                while ($pos < $stop) {
                    $field = Message::readVarint($answer, $pos);
                    if ($field === 0x0a || $field === 0x12) {
                        $len = Message::readVarint($answer, $pos);
                        $bytes = (string)\substr($answer, $pos, $len);
                        $pos += $len;
                        if ($field === 0x0a) {
                            $itemKey = $bytes;
                        } else {
                            $value = $bytes;
                        }
                    } else {
                        self::skip($answer, $pos, $field & 7);
                    }
                }
                if ($pos !== $stop) {
                    break;
                }
                if ($itemKey === $key) {
                    return $value;
                }
            }
        } catch (\Throwable $e) {
            throw new KeyValueException('malformed kv.v1.Response from the server: ' . $e->getMessage(), 0, $e);
        }
        if ($pos !== $end) {
            throw new KeyValueException('malformed kv.v1.Response from the server (a field runs past its end)');
        }
        return null;
    }

    private static function skip(string $data, int &$pos, int $wire): void
    {
        match ($wire) {
            0 => Message::readVarint($data, $pos),
            1 => $pos += 8,
            2 => $pos += Message::readVarint($data, $pos),
            5 => $pos += 4,
            default => throw new KeyValueException("malformed kv.v1.Response from the server (wire type $wire)"),
        };
    }

    /** @return list<string> */
    private static function keys(iterable $keys): array
    {
        $list = [];
        foreach ($keys as $key) {
            self::checkKey($key);
            $list[] = $key;
        }
        return $list;
    }

    private static function checkKey(mixed $key): void
    {
        if (!\is_string($key)) {
            throw new InvalidArgumentException(
                \sprintf('Cache key must be a string, but %s passed', \get_debug_type($key)),
            );
        }
        if ($key === '') {
            throw new InvalidArgumentException('Cache key must not be empty');
        }
    }

    /** null → no expiry (''); seconds or an interval from now → an RFC 3339 time in UTC. */
    private static function timeout(null|int|\DateInterval $ttl): string
    {
        if ($ttl === null) {
            return '';
        }
        $now = new \DateTimeImmutable('now', new \DateTimeZone('UTC'));
        $at = $ttl instanceof \DateInterval ? $now->add($ttl) : $now->modify(\sprintf('%+d seconds', $ttl));
        return $at->format(\DateTimeInterface::RFC3339);
    }

    private static function parseTime(string $text): \DateTimeImmutable
    {
        try {
            return (new \DateTimeImmutable($text))->setTimezone(new \DateTimeZone('UTC'));
        } catch (\Exception $e) {
            throw new KeyValueException(\sprintf('the server sent an unreadable expiry time "%s"', $text), 0, $e);
        }
    }
}
