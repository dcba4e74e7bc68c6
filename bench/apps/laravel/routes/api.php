<?php

declare(strict_types=1);

use App\Http\Controllers\ItemController;
use Illuminate\Support\Facades\Route;

// A controller class, not a closure: Laravel 8 cannot cache closure routes.
Route::get('/item/{id}', [ItemController::class, 'show'])->whereNumber('id');
