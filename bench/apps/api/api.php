<?php

/*
 * A "typical API" endpoint, framework-free: route the request, decode a ~5 KB
 * JSON order, validate and price it, encode a JSON answer.
 *
 * api_routes() compiles the routing table (php-fpm: every request; fastrr
 * worker: once), api_handle() serves one request and returns [status, body].
 *
 *   POST /api/v1/orders              price an order (the benchmark route)
 *   GET  /api/v1/orders/{id}         one order
 *   GET  /api/v1/users/{id}          one user
 *   GET  /api/v1/health              liveness
 */

declare(strict_types=1);

const API_JSON = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;

/**
 * One regex per method, FastRoute's "group position" trick: the alternative
 * that matched tells which route it was.
 *
 * @return array<string, array{0:string, 1:list<array{0:string, 1:list<string>}>}>
 */
function api_routes(): array
{
    $table = [
        ['POST', '/api/v1/orders', 'create_order', []],
        ['GET', '/api/v1/orders/(\d+)', 'show_order', ['id']],
        ['GET', '/api/v1/users/(\d+)', 'show_user', ['id']],
        ['GET', '/api/v1/health', 'health', []],
        ['DELETE', '/api/v1/orders/(\d+)', 'cancel_order', ['id']],
    ];
    $byMethod = [];
    foreach ($table as [$method, $pattern, $handler, $params]) {
        $byMethod[$method][] = [$pattern, $handler, $params];
    }
    $compiled = [];
    foreach ($byMethod as $method => $routes) {
        $parts = [];
        $handlers = [];
        foreach ($routes as $i => [$pattern, $handler, $params]) {
            // (*MARK) names the alternative that matched.
            $parts[] = $pattern . '(*MARK:' . $i . ')';
            $handlers[$i] = [$handler, $params];
        }
        $compiled[$method] = ['~^(?|' . implode('|', $parts) . ')$~', $handlers];
    }
    return $compiled;
}

/**
 * @param array<string, array{0:string, 1:array<int, array{0:string, 1:list<string>}>}> $routes
 * @return array{0:int, 1:string}
 */
function api_handle(array $routes, string $method, string $path, string $body): array
{
    if (!isset($routes[$method]) || !preg_match($routes[$method][0], $path, $m)) {
        return [404, json_encode(['error' => 'no route', 'method' => $method, 'path' => $path], API_JSON)];
    }
    [$handler, $names] = $routes[$method][1][(int)$m['MARK']];
    $args = [];
    foreach ($names as $i => $name) {
        $args[$name] = $m[$i + 1];
    }
    try {
        return match ($handler) {
            'create_order' => api_create_order(json_decode($body, true, 64, JSON_THROW_ON_ERROR)),
            'show_order' => [200, json_encode(['id' => (int)$args['id'], 'status' => 'accepted'], API_JSON)],
            'show_user' => [200, json_encode(['id' => (int)$args['id'], 'name' => 'user' . $args['id']], API_JSON)],
            'health' => [200, '{"ok":true}'],
            'cancel_order' => [204, ''],
        };
    } catch (JsonException $e) {
        return [400, json_encode(['error' => 'invalid JSON: ' . $e->getMessage()], API_JSON)];
    } catch (InvalidArgumentException $e) {
        return [422, json_encode(['error' => $e->getMessage()], API_JSON)];
    }
}

/**
 * @param mixed $order the decoded body
 * @return array{0:int, 1:string}
 */
function api_create_order(mixed $order): array
{
    if (!is_array($order) || !isset($order['customer']['id'], $order['items']) || !is_array($order['items'])) {
        throw new InvalidArgumentException('an order needs customer.id and items');
    }
    $taxRates = ['books' => 7, 'food' => 7];
    $lines = [];
    $net = 0;
    $tax = 0;
    $count = 0;
    foreach ($order['items'] as $n => $item) {
        if (!isset($item['sku'], $item['quantity'], $item['unit_price'])
            || !is_int($item['quantity']) || !is_int($item['unit_price']) || $item['quantity'] < 1) {
            throw new InvalidArgumentException("items[$n]: sku, quantity >= 1 and unit_price (cents) are required");
        }
        $subtotal = $item['quantity'] * $item['unit_price'];
        if ($item['quantity'] >= 3) {
            $subtotal = intdiv($subtotal * 95, 100); // volume discount
        }
        $rate = $taxRates[$item['category'] ?? ''] ?? 19;
        $lineTax = intdiv($subtotal * $rate + 50, 100);
        $net += $subtotal;
        $tax += $lineTax;
        $count += $item['quantity'];
        $lines[] = ['sku' => $item['sku'], 'quantity' => $item['quantity'], 'net' => $subtotal, 'tax' => $lineTax,
                    'gift' => in_array('gift', $item['tags'] ?? [], true)];
    }
    $discount = ($order['coupon'] ?? '') === 'SPRING10' ? intdiv($net, 10) : 0;
    $shipping = ($order['shipping']['method'] ?? 'standard') === 'express' ? 1490 : 490;
    return [201, json_encode([
        'order' => sprintf('ord_%08x', crc32($order['meta']['request_id'] ?? '')),
        'status' => 'accepted',
        'customer' => $order['customer']['id'],
        'currency' => $order['currency'] ?? 'EUR',
        'items' => $count,
        'net' => $net,
        'tax' => $tax,
        'discount' => $discount,
        'shipping' => $shipping,
        'total' => $net + $tax - $discount + $shipping,
        'lines' => $lines,
    ], API_JSON)];
}
