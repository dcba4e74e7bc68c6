<?php

/*
 * fastrr worker for the legacy app: the same page served by SuperglobalsWorker
 * under php-cgi (which keeps header()/setcookie()), lib.php loaded once.
 */

declare(strict_types=1);

require __DIR__ . '/../../../php/autoload.php';

Fastrr\Http\SuperglobalsWorker::create()->serve(function (): void {
    require __DIR__ . '/page.php';
});
