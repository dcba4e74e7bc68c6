<?php

declare(strict_types=1);

namespace Fastrr\Broadcast;

/**
 * Lets code written for roadrunner-php/broadcast run on this library unchanged. After
 * `RoadRunnerNames::register()`:
 * - each `Spiral\RoadRunner\Broadcast\X` (Broadcast, BroadcastInterface, TopicInterface,
 *   Topic\SingleTopic, Topic\Group, Exception\BroadcastException, DTO\V1\Message, ...) is
 *   an alias of `Fastrr\Broadcast\X`;
 * - each `Spiral\Goridge\RPC\X` (RPC, RPCInterface, Codec\ProtobufCodec,
 *   Exception\ServiceException, ...) of `Fastrr\RPC\X`, since that code builds its RPC with
 *   `Spiral\Goridge\RPC\RPC::create()`.
 *
 * The aliases are made at once, not on autoload: `instanceof` and parameter types never
 * autoload, so a lazily aliased `Spiral\...\BroadcastInterface` would not match our object
 * until something else had named the class. A name another autoloader provides (the real
 * packages installed) is left alone; then give Broadcast a Fastrr\RPC\RPC.
 */
final class RoadRunnerNames
{
    private const ALIASES = [
        'Spiral\\RoadRunner\\Broadcast\\' => ['Fastrr\\Broadcast\\', [
            'BroadcastInterface', 'TopicInterface', 'Broadcast', 'Topic\\Topic', 'Topic\\SingleTopic',
            'Topic\\Group', 'Exception\\BroadcastException', 'Exception\\InvalidArgumentException',
            'DTO\\V1\\Message', 'DTO\\V1\\Request', 'DTO\\V1\\Response',
        ]],
        'Spiral\\Goridge\\RPC\\' => ['Fastrr\\RPC\\', [
            'CodecInterface', 'RPCInterface', 'RPC', 'Codec\\JsonCodec', 'Codec\\MsgpackCodec',
            'Codec\\ProtobufCodec', 'Codec\\RawCodec', 'Exception\\RPCException', 'Exception\\ServiceException',
        ]],
    ];
    private static bool $registered = false;

    public static function register(): void
    {
        if (self::$registered) {
            return;
        }
        self::$registered = true;
        foreach (self::ALIASES as $prefix => [$to, $names]) {
            foreach ($names as $name) {
                $theirs = $prefix . $name;
                if (\class_exists($theirs) || \interface_exists($theirs)) {
                    continue;
                }
                \class_alias($to . $name, $theirs);
            }
        }
    }
}
