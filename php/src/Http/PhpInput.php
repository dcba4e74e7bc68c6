<?php

declare(strict_types=1);

namespace Fastrr\Http;

use Fastrr\Worker;

/**
 * PHP's own rules for what a request gives a script, where the server's (RoadRunner's) differ:
 * urlencoded POST bodies, the Cookie header, the names of a parsed form. SuperglobalsWorker and
 * PSR7Worker use them so that a page sees what it sees under php-fpm (tests/differential).
 */
final class PhpInput
{
    /**
     * An urlencoded POST body by PHP's own parser (parse_str: nesting limits, names, decoding).
     * PHP's POST reader stops one variable later than parse_str() does (it counts after adding):
     * past max_input_vars, the first max_input_vars + 1 pairs are kept, as php-fpm keeps them.
     *
     * @return array<array-key, mixed>
     */
    public static function postForm(string $body): array
    {
        $limit = (int)\ini_get('max_input_vars') ?: 1000;
        $pairs = \array_values(\array_filter(\explode('&', $body), static fn (string $p): bool => $p !== ''));
        if (\count($pairs) <= $limit) {
            \parse_str($body, $post);
            return $post;
        }
        \parse_str(\implode('&', \array_slice($pairs, 0, $limit)), $post);
        \parse_str($pairs[$limit], $last);
        Worker::log(\sprintf('fastrr: a POST form has more than max_input_vars (%d) variables; the rest dropped, as PHP does', $limit));
        return \array_replace_recursive($post, $last);
    }

    public static function isUrlencoded(string $contentType): bool
    {
        $type = \strtolower(\trim(\explode(';', $contentType, 2)[0]));
        return $type === 'application/x-www-form-urlencoded';
    }

    /**
     * $_COOKIE from the Cookie header by PHP's rules: pairs split on ';', leading whitespace
     * dropped, names taken as they are (not percent-decoded), values raw-url-decoded ('+' stays),
     * [..] nests, the first of two equal plain names wins, at most max_input_vars pairs.
     *
     * @return array<array-key, mixed>
     */
    public static function cookies(string $header): array
    {
        if ($header === '') {
            return [];
        }
        $limit = (int)\ini_get('max_input_vars') ?: 1000;
        $kept = [];
        $seen = [];
        foreach (\explode(';', $header) as $pair) {
            $pair = \ltrim($pair, " \t\n\r\v\f");
            $eq = \strpos($pair, '=');
            if ($pair === '' || $eq === 0) {
                continue;
            }
            if (\count($kept) >= $limit) {
                break;
            }
            [$name, $value] = $eq === false ? [$pair, ''] : [\substr($pair, 0, $eq), \substr($pair, $eq + 1)];
            // Encoded so that parse_str() takes the name as it is and decodes the value once, raw.
            $one = \rawurlencode($name) . '=' . \rawurlencode(\rawurldecode($value));
            \parse_str($one, $parsed);
            $key = \array_key_first($parsed);
            if ($key === null) {
                continue;
            }
            if (!\is_array($parsed[$key]) && isset($seen[$key])) {
                continue; // a plain name already set (by a cookie with a more specific path)
            }
            $seen[$key] = true;
            $kept[] = $one;
        }
        \parse_str(\implode('&', $kept), $cookies);
        return $cookies;
    }

    /**
     * $_COOKIE from a server's cookie map, for requests without a Cookie header (the server's
     * parser may have dropped names PHP keeps, such as a[b]: the header is preferred).
     *
     * @param array<array-key, mixed> $map
     * @return array<array-key, mixed>
     */
    public static function cookieMap(array $map): array
    {
        $cookies = [];
        foreach ($map as $name => $value) {
            \parse_str(\rawurlencode((string)$name) . '=' . \rawurlencode((string)$value), $one);
            $cookies += $one; // the first of two colliding names wins, as in PHP
        }
        return $cookies;
    }

    /**
     * Top-level names of a parsed multipart form as PHP registers them: leading spaces dropped,
     * ' ' and '.' made '_' (the server keeps them as sent, as RoadRunner does).
     *
     * @param array<array-key, mixed> $tree
     * @return array<array-key, mixed>
     */
    public static function phpNames(array $tree): array
    {
        $out = [];
        foreach ($tree as $key => $value) {
            if (\is_string($key)) {
                $key = \strtr(\ltrim($key, ' '), ' .', '__');
            }
            $out[$key] = $value;
        }
        return $out;
    }
}
