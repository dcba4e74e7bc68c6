<?php
// fastrr's side of the differential suite: page.php served hot by SuperglobalsWorker.
require __DIR__ . '/../../php/autoload.php';

Fastrr\Http\SuperglobalsWorker::create()->serve(static function (): void {
    require __DIR__ . '/page.php';
});
