<?php

/*
 * A legacy-style app (tests/workers/legacy_page.php reads superglobals, prints,
 * calls header()/setcookie()/exit) served hot by SuperglobalsWorker. Run it
 * with php-cgi (headers kept) or php-cli (headers dropped, one warning).
 */

declare(strict_types=1);

require __DIR__ . '/../../php/autoload.php';

$worker = Fastrr\Http\SuperglobalsWorker::create();
$served = 0;
$worker->serve(function () use (&$served): void {
    $served++;
    require __DIR__ . '/legacy_page.php';
});
