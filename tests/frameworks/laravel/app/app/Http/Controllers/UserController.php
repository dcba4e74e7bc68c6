<?php

declare(strict_types=1);

namespace App\Http\Controllers;

use App\Services\Greeter;
use Illuminate\Contracts\Auth\Factory as AuthFactory;
use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Routing\Controller;

/** A controller with constructor injection (a service and the auth factory). */
final class UserController extends Controller
{
    public function __construct(private readonly Greeter $greeter, private readonly AuthFactory $auth)
    {
    }

    public function login(Request $request): JsonResponse
    {
        $ok = $this->auth->guard()->attempt($request->only('email', 'password'));
        if (!$ok) {
            return new JsonResponse(['error' => 'invalid credentials'], 422);
        }
        $request->session()->regenerate();
        $request->session()->put('logged_in_as', $request->input('email'));
        return new JsonResponse(['user' => $this->auth->guard()->user()->name]);
    }

    public function me(Request $request): JsonResponse
    {
        $user = $request->user();
        return new JsonResponse([
            'user' => $user?->name,
            'greeting' => $this->greeter->greet($user?->name ?? 'guest'),
        ]);
    }

    public function logout(Request $request): JsonResponse
    {
        $this->auth->guard()->logout();
        $request->session()->invalidate();
        return new JsonResponse(['user' => null]);
    }
}
