<?php

/*
 * What opcache says about this PHP: `fastrr bench` asks php-fpm for it (a request to
 * /__fastrr_bench/opcache, through the app's pool, after the measurements) and runs it with the
 * fastrr workers' command line (php-cli -c the bench's php.ini), so the report can state that
 * opcache was on for both, and how many scripts it held.
 */

declare(strict_types=1);

$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
$stats = is_array($status) ? ($status['opcache_statistics'] ?? []) : [];
if (PHP_SAPI !== 'cli') {
    header('Content-Type: application/json');
}
echo json_encode([
    'sapi' => PHP_SAPI,
    'loaded' => extension_loaded('Zend OPcache'),
    'enabled' => is_array($status) && !empty($status['opcache_enabled']),
    'enable_cli' => (bool)ini_get('opcache.enable_cli'),
    'validate_timestamps' => (bool)ini_get('opcache.validate_timestamps'),
    'cached_scripts' => (int)($stats['num_cached_scripts'] ?? 0),
    'hits' => (int)($stats['hits'] ?? 0),
    'misses' => (int)($stats['misses'] ?? 0),
    'memory_used_mib' => is_array($status) ? round(($status['memory_usage']['used_memory'] ?? 0) / 2 ** 20, 1) : 0,
    'jit' => is_array($status) && !empty($status['jit']['on']),
]), "\n";
