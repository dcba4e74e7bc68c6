<?php

/*
 * Unit checks of Fastrr\Symfony\RequestFactory (run by tests/frameworks/test_symfony.py, or
 * `php tests/frameworks/symfony/unit.php`): fastrr requests built by hand, the HttpFoundation
 * Request checked getter by getter. The last line is "N passed, M failed".
 */

declare(strict_types=1);

require __DIR__ . '/app/vendor/autoload.php';

use Fastrr\Http\Request as FastrrRequest;
use Fastrr\Symfony\RequestFactory;
use Symfony\Component\HttpFoundation\File\UploadedFile;

$passed = 0;
$failed = 0;

function check(string $what, mixed $got, mixed $expected): void
{
    global $passed, $failed;
    if ($got === $expected) {
        $passed++;
        return;
    }
    $failed++;
    echo "FAIL $what: got ", var_export($got, true), ', expected ', var_export($expected, true), "\n";
}

$factory = new RequestFactory(['SCRIPT_FILENAME' => '/srv/app/public/index.php', 'APP_ENV' => 'prod', 'argv' => []]);

// HTTPS, the client address, headers, the query by PHP's rules.
$r = $factory->create(new FastrrRequest(
    remoteAddr: '10.1.2.3',
    method: 'GET',
    uri: 'https://shop.example:8443/api/items?a.b=1&c[]=2',
    headers: ['Accept' => ['application/json'], 'X_Under' => ['dropped'], 'Cookie' => ['s=1; t[k]=2']],
    query: ['ignored' => 'the raw query wins'],
));
check('secure', $r->isSecure(), true);
check('scheme', $r->getScheme(), 'https');
check('host', $r->getHost(), 'shop.example');
check('port', $r->getPort(), 8443);
check('client ip', $r->getClientIp(), '10.1.2.3');
check('path info', $r->getPathInfo(), '/api/items');
check('base url', $r->getBaseUrl(), '');
check('script name', $r->server->get('SCRIPT_NAME'), '/index.php');
check('query by PHP', $r->query->all(), ['a_b' => '1', 'c' => ['2']]);
check('header', $r->headers->get('accept'), 'application/json');
check('underscore header dropped as nginx does', $r->headers->has('x-under'), false);
check('cookies by PHP', $r->cookies->all(), ['s' => '1', 't' => ['k' => '2']]);
check('boot server kept', $r->server->get('APP_ENV'), 'prod');

// An explicit front controller path: its rest is the path info.
$r = $factory->create(new FastrrRequest(uri: 'http://x/index.php/greet/bob'));
check('explicit index.php base url', $r->getBaseUrl(), '/index.php');
check('explicit index.php path info', $r->getPathInfo(), '/greet/bob');

// Urlencoded POST by PHP's parser; PUT parsed the way createFromGlobals() does; JSON kept as content.
$r = $factory->create(new FastrrRequest(method: 'POST', uri: 'http://x/f', headers: ['Content-Type' => ['application/x-www-form-urlencoded']], body: 'a=1&b[]=2&c.d=3'));
check('POST form', $r->request->all(), ['a' => '1', 'b' => ['2'], 'c_d' => '3']);
check('POST form content kept', $r->getContent(), 'a=1&b[]=2&c.d=3');
$r = $factory->create(new FastrrRequest(method: 'PUT', uri: 'http://x/f', headers: ['Content-Type' => ['application/x-www-form-urlencoded']], body: 'x=1'));
check('PUT form', $r->request->all(), ['x' => '1']);
$r = $factory->create(new FastrrRequest(method: 'POST', uri: 'http://x/f', headers: ['Content-Type' => ['application/json']], body: '{"k":[1]}'));
check('JSON body', $r->toArray(), ['k' => [1]]);
check('JSON not a form', $r->request->all(), []);

// Multipart: the server's parsed tree, files as UploadedFile in test mode, an empty field null.
$tmp = tempnam(sys_get_temp_dir(), 'fastrr-unit-');
file_put_contents($tmp, 'hello');
$r = $factory->create(new FastrrRequest(
    method: 'POST',
    uri: 'http://x/upload',
    headers: ['Content-Type' => ['multipart/form-data; boundary=b']],
    body: '{"f.g":"1"}',
    parsed: true,
    uploads: [
        'up' => ['name' => 'h.txt', 'fullPath' => 'dir/h.txt', 'mime' => 'text/plain', 'size' => 5, 'error' => 0, 'tmpName' => $tmp],
        'none' => ['name' => '', 'mime' => '', 'size' => 0, 'error' => UPLOAD_ERR_NO_FILE, 'tmpName' => ''],
        'docs' => ['a' => [['name' => 'big.bin', 'mime' => 'application/octet-stream', 'size' => 0, 'error' => UPLOAD_ERR_INI_SIZE, 'tmpName' => '']]],
    ],
));
check('multipart fields, PHP names', $r->request->all(), ['f_g' => '1']);
check('multipart content empty', $r->getContent(), '');
$up = $r->files->get('up');
check('upload class', $up instanceof UploadedFile, true);
check('upload base name', $up->getClientOriginalName(), 'h.txt');
check('upload mime', $up->getClientMimeType(), 'text/plain');
check('upload valid without is_uploaded_file()', $up->isValid(), true);
check('empty field', $r->files->get('none'), null);
$big = $r->files->get('docs')['a'][0];
check('failed upload error', $big->getError(), UPLOAD_ERR_INI_SIZE);
check('failed upload invalid', $big->isValid(), false);
$moved = $up->move(sys_get_temp_dir(), basename($tmp) . '.moved');
check('move() renames', file_get_contents($moved->getPathname()), 'hello');
unlink($moved->getPathname());

echo "$passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
