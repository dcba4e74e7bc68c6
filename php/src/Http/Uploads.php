<?php

declare(strict_types=1);

namespace Fastrr\Http;

/**
 * The server's uploads tree in PHP's `$_FILES` layout.
 *
 * The server (fastrr or RoadRunner) describes each file as
 * `{name, mime, size, error, tmpName}`, nested the way the form named it:
 * `docs[a][]` → `['docs' => ['a' => [0 => file]]]`. PHP's `$_FILES` has one
 * entry per top-level field instead, and for bracketed names the nesting moves
 * under each of the keys `name`, `full_path`, `type`, `tmp_name`, `error`,
 * `size`: `$_FILES['docs']['name']['a'][0]`.
 *
 * As PHP does, a file with an error (other than UPLOAD_ERR_PARTIAL) has
 * `type` '', `tmp_name` '' and `size` 0; `name` is the client file name
 * without directories, `full_path` the name as the client sent it.
 */
final class Uploads
{
    private const KEYS = ['name', 'full_path', 'type', 'tmp_name', 'error', 'size'];

    /**
     * @param array<array-key, mixed> $tree the uploads tree, as in Request::$uploads
     * @return array<array-key, array<string, mixed>> the `$_FILES` array
     */
    public static function toPhpFiles(array $tree): array
    {
        $files = [];
        foreach ($tree as $field => $node) {
            if (!\is_array($node)) {
                continue;
            }
            if (self::isFile($node)) {
                $files[$field] = self::entry($node);
                continue;
            }
            $entry = [];
            foreach (self::KEYS as $key) {
                $entry[$key] = self::column($node, $key);
            }
            if ($entry['error'] !== []) {
                $files[$field] = $entry;
            }
        }
        return $files;
    }

    /**
     * Whether a node of the tree is one file (a leaf) rather than a level of brackets.
     *
     * @param array<array-key, mixed> $node
     */
    public static function isFile(array $node): bool
    {
        return \array_key_exists('tmpName', $node) && \array_key_exists('error', $node) && !\is_array($node['error']);
    }

    /**
     * One key of every file under a subtree, keeping the subtree's nesting.
     *
     * @param array<array-key, mixed> $tree
     * @return array<array-key, mixed>
     */
    private static function column(array $tree, string $key): array
    {
        $out = [];
        foreach ($tree as $k => $node) {
            if (!\is_array($node)) {
                continue;
            }
            if (self::isFile($node)) {
                $out[$k] = self::entry($node)[$key];
                continue;
            }
            $sub = self::column($node, $key);
            if ($sub !== []) {
                $out[$k] = $sub;
            }
        }
        return $out;
    }

    /**
     * The client file name as PHP gives it: everything up to the last '/' or '\' stripped
     * (browsers used to send full paths).
     */
    public static function baseName(string $clientName): string
    {
        $cut = \max((int)\strrpos('/' . $clientName, '/'), (int)\strrpos('\\' . $clientName, '\\'));
        return \substr($clientName, $cut);
    }

    /**
     * @param array<array-key, mixed> $file {name, mime, size, error, tmpName}
     * @return array{name: string, full_path: string, type: string, tmp_name: string, error: int, size: int}
     */
    private static function entry(array $file): array
    {
        $error = (int)$file['error'];
        $ok = $error === \UPLOAD_ERR_OK;
        // fastrr sends the name as PHP reads it (directories kept) as fullPath; RoadRunner only the base name.
        $clientName = (string)($file['fullPath'] ?? $file['name'] ?? '');
        return [
            'name' => self::baseName($clientName),
            'full_path' => $clientName,
            'type' => $ok || $error === \UPLOAD_ERR_PARTIAL ? (string)($file['mime'] ?? '') : '',
            'tmp_name' => $ok ? (string)$file['tmpName'] : '',
            'error' => $error,
            'size' => $ok ? (int)($file['size'] ?? 0) : 0,
        ];
    }
}
