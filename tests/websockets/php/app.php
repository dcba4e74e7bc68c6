<?php

/*
 * The websockets suite's app: one script for the http pool and the websockets pool.
 *
 * Authorization (attributes set by the websockets plugin, as RoadRunner 2.x sets them):
 *   ws:joinServer   allowed with the cookie auth=ok: 200 with Set-Cookie: ws=joined and
 *                   X-Remote: the remoteAddr PHP was given;
 *                   otherwise 403 "forbidden: log in first" with X-Denied: yes
 *   ws:joinTopics   "t1,t2": denied (403) when a topic starts with "private-" and the cookie
 *                   role is not admin, or a topic is "forbidden"; else 200
 *   the cookie crash=1 on the upgrade, or the topic "crash": the worker exits without answering
 * HTTP:
 *   /publish?topic=T&msg=M   publishes M to T (Fastrr\Broadcast over RR_RPC), "published"
 *   anything else            200 "app" (and the path the websockets pool sees in RR_BROADCAST_PATH)
 */

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';

use Fastrr\Broadcast\Broadcast;
use Fastrr\Http\HttpWorker;
use Fastrr\RPC\RPC;
use Fastrr\Worker;

$http = new HttpWorker(Worker::create());
$broadcast = null;

while ($req = $http->waitRequest()) {
    $attrs = $req->attributes;
    $cookies = $req->cookies;
    if (($attrs['ws:joinServer'] ?? false) === true) {
        if (($cookies['crash'] ?? '') === '1') {
            exit(1);
        }
        if (($cookies['auth'] ?? '') === 'ok') {
            $http->respond(200, '', ['Set-Cookie' => ['ws=joined; Path=/'], 'X-Remote' => [$req->remoteAddr]]);
        } else {
            $http->respond(403, 'forbidden: log in first', ['X-Denied' => ['yes'], 'Content-Type' => ['text/plain']]);
        }
        continue;
    }
    if (isset($attrs['ws:joinTopics'])) {
        if (in_array('crash', explode(',', (string)$attrs['ws:joinTopics']), true)) {
            exit(1);
        }
        $ok = true;
        foreach (explode(',', (string)$attrs['ws:joinTopics']) as $topic) {
            if ($topic === 'forbidden' || (str_starts_with($topic, 'private-') && ($cookies['role'] ?? '') !== 'admin')) {
                $ok = false;
            }
        }
        if ($ok) {
            $http->respond(200, '', ['X-Topics' => [(string)$attrs['ws:joinTopics']]]);
        } else {
            $http->respond(403, 'topic forbidden', ['Content-Type' => ['text/plain']]);
        }
        continue;
    }
    if (parse_url($req->uri, PHP_URL_PATH) === '/publish') {
        parse_str((string)parse_url($req->uri, PHP_URL_QUERY), $q);
        $broadcast ??= new Broadcast(RPC::fromEnvironment());
        $broadcast->publish((string)$q['topic'], (string)$q['msg']);
        $http->respond(200, 'published');
        continue;
    }
    $http->respond(200, 'app ' . (getenv('RR_BROADCAST_PATH') ?: '-'));
}
