<?php

/*
 * The "library" of the legacy app: configuration and helpers a php-fpm era
 * site loads on every request (require_once from each page).
 */

declare(strict_types=1);

const SHOP_NAME = 'Corner Bookshop';

function shop_products(): array
{
    $products = [];
    $categories = ['books', 'music', 'games', 'maps'];
    for ($i = 1; $i <= 60; $i++) {
        $products[] = [
            'id' => $i,
            'name' => 'Item #' . $i . ' <' . $categories[$i % 4] . '>',
            'category' => $categories[$i % 4],
            'price' => round(3.5 + $i * 1.25, 2),
        ];
    }
    return $products;
}

function h(string $text): string
{
    return htmlspecialchars($text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}
