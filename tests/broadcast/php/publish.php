<?php

/*
 * One publish through Fastrr\Broadcast against a real server, for tests/broadcast:
 *
 *   php publish.php <rpc address> <topics, comma-separated> <message> [<message>...]
 *   php publish.php <rpc address> --rr <topics> <message>...   the roadrunner-php names
 *   php publish.php <rpc address> --join <topics> <message>... through join()->publish()
 *
 * Prints {"ok": true} or {"error": class, "message": text} (exit 1).
 */

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';

[, $address] = $argv + [null, null];
$args = array_slice($argv, 2);
$mode = 'plain';
if (isset($args[0]) && str_starts_with($args[0], '--')) {
    $mode = substr(array_shift($args), 2);
}
$topics = $args === [] ? [] : array_values(array_filter(explode(',', array_shift($args)), fn ($t) => $t !== '-'));
$messages = $args;

try {
    if ($mode === 'rr') {
        \Fastrr\Broadcast\RoadRunnerNames::register();
        // what code written for roadrunner-php/broadcast says, unchanged
        $broadcast = new \Spiral\RoadRunner\Broadcast\Broadcast(\Spiral\Goridge\RPC\RPC::create($address));
        if (!$broadcast instanceof \Spiral\RoadRunner\Broadcast\BroadcastInterface) {
            throw new \LogicException('not a BroadcastInterface');
        }
        try {
            $broadcast->publish($topics, $messages);
        } catch (\Spiral\RoadRunner\Broadcast\Exception\BroadcastException $e) {
            echo json_encode(['error' => 'Spiral\RoadRunner\Broadcast\Exception\BroadcastException',
                              'class' => get_class($e), 'message' => $e->getMessage()]), "\n";
            exit(1);
        }
    } else {
        $broadcast = new \Fastrr\Broadcast\Broadcast(\Fastrr\RPC\RPC::create($address));
        if ($mode === 'join') {
            $topic = $broadcast->join($topics);
            $names = $topic instanceof \Fastrr\Broadcast\Topic\SingleTopic ? [$topic->getName()] : $topic->getNames();
            fwrite(STDERR, 'joined ' . implode(',', $names) . "\n");
            $topic->publish(count($messages) === 1 ? $messages[0] : $messages);
        } else {
            $broadcast->publish(count($topics) === 1 ? $topics[0] : $topics,
                                count($messages) === 1 ? $messages[0] : $messages);
        }
    }
    echo json_encode(['ok' => true]), "\n";
} catch (\Throwable $e) {
    echo json_encode(['error' => get_class($e), 'message' => $e->getMessage()]), "\n";
    exit(1);
}
