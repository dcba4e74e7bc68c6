<?php
// fastrr's side of the PSR-7 comparison: Fastrr\Http\PSR7Worker with Nyholm's factories.
require __DIR__ . '/../../php/autoload.php';
require '/usr/share/php/Nyholm/Psr7/autoload.php';
require __DIR__ . '/psr7_dump.php';

$f = new Nyholm\Psr7\Factory\Psr17Factory();
$worker = new Fastrr\Http\PSR7Worker(Fastrr\Worker::create(), $f, $f, $f);
while ($request = $worker->waitRequest()) {
    $worker->respond($f->createResponse(200)->withHeader('Content-Type', 'application/json')
        ->withBody($f->createStream(diff_psr7_view($request))));
}
