<?php

/*
 * An HTTP worker that publishes from inside a request, over the RPC address the server
 * gives its workers (RR_RPC): GET /publish?topic=T&msg=M publishes M to T and answers
 * "published"; a BroadcastException answers 500 with its text. Anything else: 200 "ok"
 * (the websockets upgrade authorization says yes).
 */

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';

use Fastrr\Broadcast\Broadcast;
use Fastrr\Broadcast\Exception\BroadcastException;
use Fastrr\Http\HttpWorker;
use Fastrr\RPC\RPC;
use Fastrr\Worker;

$http = new HttpWorker(Worker::create());
$broadcast = new Broadcast(RPC::fromEnvironment());

while ($req = $http->waitRequest()) {
    if ($req->uri !== '' && parse_url($req->uri, PHP_URL_PATH) === '/publish') {
        parse_str((string)parse_url($req->uri, PHP_URL_QUERY), $q);
        try {
            $broadcast->publish((string)$q['topic'], (string)$q['msg']);
            $http->respond(200, 'published');
        } catch (BroadcastException $e) {
            $http->respond(500, get_class($e) . ': ' . $e->getMessage());
        }
        continue;
    }
    $http->respond(200, 'ok');
}
