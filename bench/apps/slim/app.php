<?php

/*
 * The Slim 3 application both servers run (Debian's php-slim).
 *
 * bench_slim_app() builds it: php-fpm calls it on every request (index.php),
 * a fastrr worker calls it once at boot (worker.php). Everything else is the
 * same code, so the difference between the two is the per-request bootstrap.
 *
 *   GET  /                        text
 *   GET  /hello/{name}            JSON greeting
 *   GET  /api/users/{id:[0-9]+}   JSON user: the benchmark route
 *   POST /api/users               JSON body echoed with an id
 */

declare(strict_types=1);

use Slim\App;
use Slim\Http\Request;
use Slim\Http\Response;

function bench_slim_app(): App
{
    $app = new App([
        'settings' => [
            'displayErrorDetails' => false,
            'addContentLengthHeader' => true,
        ],
    ]);

    $app->get('/', function (Request $request, Response $response): Response {
        $response->getBody()->write('Slim benchmark app');
        return $response;
    });

    $app->get('/hello/{name}', function (Request $request, Response $response, array $args): Response {
        return $response->withJson(['hello' => $args['name']]);
    });

    $app->group('/api', function (): void {
        /** @var App $this */
        $this->get('/users/{id:[0-9]+}', function (Request $request, Response $response, array $args): Response {
            $id = (int)$args['id'];
            return $response->withJson([
                'id' => $id,
                'name' => 'user' . $id,
                'email' => 'user' . $id . '@example.com',
                'roles' => ['reader', 'writer'],
                'active' => true,
            ]);
        });
        $this->post('/users', function (Request $request, Response $response): Response {
            $data = (array)$request->getParsedBody();
            return $response->withJson(['id' => 1001] + $data, 201);
        });
    });

    return $app;
}
