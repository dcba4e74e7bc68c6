<?php

/*
 * Fastrr\Lock against a real server, for tests/kv/test_kv_php.py:
 *
 *   php lock_client.php <rpc address> hold <resource> <seconds>
 *       waits up to 10 s for an exclusive lock, holds it <seconds>, releases it;
 *       prints {"locked": unix time, "released": unix time, "id": id}
 *   php lock_client.php <rpc address> tour <resource>
 *       every method once, printing what each returned (see the test)
 *
 * Failures print {"error": class, "message": text} and exit 1.
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

use Fastrr\Lock\Lock;
use Fastrr\RPC\RPC;

[, $address, $op, $resource] = $argv + [null, null, null, null];
if ($resource === null) {
    fwrite(STDERR, "usage: php lock_client.php <rpc address> hold|tour <resource> [seconds]\n");
    exit(2);
}
$lock = new Lock(RPC::create($address));

try {
    if ($op === 'hold') {
        $id = $lock->lock($resource, ttl: 30, waitTTL: 10);
        if ($id === false) {
            throw new RuntimeException("lock on $resource not granted within 10 s");
        }
        $locked = microtime(true);
        usleep((int)((float)$argv[4] * 1e6));
        $released = microtime(true);
        if (!$lock->release($resource, $id)) {
            throw new RuntimeException("release of $resource under $id returned false");
        }
        $answer = ['locked' => $locked, 'released' => $released, 'id' => $id];
    } elseif ($op === 'tour') {
        $writer = $lock->lock($resource, ttl: 5);
        $answer = [
            'writer_id' => $writer,
            'exists_any' => $lock->exists($resource),
            'exists_writer' => $lock->exists($resource, $writer),
            'exists_other' => $lock->exists($resource, 'someone-else'),
            'second_writer' => $lock->lock($resource, 'w2', waitTTL: 0.05),
            'reader_while_writer' => $lock->lockRead($resource, 'r1', waitTTL: 0.05),
            'update_ttl' => $lock->updateTTL($resource, $writer, new DateInterval('PT1M')),
            'release_wrong_id' => $lock->release($resource, 'nobody'),
            'release' => $lock->release($resource, $writer),
            'reader1' => $lock->lockRead($resource, 'r1'),
            'reader2' => $lock->lockRead($resource, 'r2'),
            'writer_while_readers' => $lock->lock($resource, 'w3', waitTTL: 0.05),
            'force_release' => $lock->forceRelease($resource),
            'exists_after_force' => $lock->exists($resource),
            'short_ttl' => $lock->lock($resource, 'brief', ttl: 0.2),
        ];
        usleep(500_000);
        $answer['exists_after_ttl'] = $lock->exists($resource, 'brief');
        $answer['force_release_unknown'] = $lock->forceRelease($resource . ':never');
    } else {
        throw new InvalidArgumentException("unknown op $op");
    }
    echo json_encode($answer), "\n";
} catch (Throwable $e) {
    echo json_encode(['error' => $e::class, 'message' => $e->getMessage()]), "\n";
    exit(1);
}
