<?php

/*
 * The upload endpoint: a ~100 KB raw body (application/octet-stream) comes in,
 * its size and CRC-32 go back, so a truncated or mangled body shows.
 */

declare(strict_types=1);

/**
 * @return array{0:int, 1:string}
 */
function upload_handle(string $method, string $body): array
{
    if ($method !== 'POST' && $method !== 'PUT') {
        return [405, '{"error":"POST a body"}'];
    }
    return [200, json_encode(['received' => strlen($body), 'crc32' => hash('crc32b', $body)])];
}
