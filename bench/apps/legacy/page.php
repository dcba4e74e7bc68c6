<?php

/*
 * A legacy page: superglobals in, header()/setcookie()/echo out. php-fpm runs
 * it per request (index.php); fastrr's SuperglobalsWorker runs the same file
 * per request in a long-lived php-cgi worker (worker.php).
 *
 *   GET /products.php?category=books   the HTML list the benchmark fetches
 */

require_once __DIR__ . '/lib.php';

$category = isset($_GET['category']) ? (string)$_GET['category'] : 'books';
$visits = isset($_COOKIE['visits']) ? (int)$_COOKIE['visits'] + 1 : 1;

header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
setcookie('visits', (string)$visits);

$rows = array_filter(shop_products(), fn (array $p): bool => $p['category'] === $category);
?>
<!doctype html>
<title><?= h(SHOP_NAME) ?>: <?= h($category) ?></title>
<h1><?= h($category) ?> (<?= count($rows) ?>)</h1>
<p>Visit <?= $visits ?> from <?= h($_SERVER['REMOTE_ADDR'] ?? '?') ?> via <?= h($_SERVER['REQUEST_METHOD']) ?>.</p>
<table>
<?php foreach ($rows as $p): ?>
<tr><td><?= $p['id'] ?></td><td><?= h($p['name']) ?></td><td><?= number_format($p['price'], 2) ?></td></tr>
<?php endforeach; ?>
</table>
