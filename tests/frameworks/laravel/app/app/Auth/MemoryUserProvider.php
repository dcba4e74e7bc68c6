<?php

declare(strict_types=1);

namespace App\Auth;

use Illuminate\Auth\GenericUser;
use Illuminate\Contracts\Auth\Authenticatable;
use Illuminate\Contracts\Auth\UserProvider;

/** Two fixed users, no database; passwords compared as plain text (a test fixture). */
final class MemoryUserProvider implements UserProvider
{
    private const USERS = [
        1 => [
            'id' => 1, 'name' => 'Alice', 'email' => 'alice@example.test', 'password' => 'secret-a',
            'remember_token' => null,
        ],
        2 => [
            'id' => 2, 'name' => 'Bob', 'email' => 'bob@example.test', 'password' => 'secret-b',
            'remember_token' => null,
        ],
    ];

    public function retrieveById($identifier): ?Authenticatable
    {
        $user = self::USERS[(int)$identifier] ?? null;
        return $user === null ? null : new GenericUser($user);
    }

    public function retrieveByToken($identifier, $token): ?Authenticatable
    {
        return null;
    }

    public function updateRememberToken(Authenticatable $user, $token): void
    {
    }

    public function retrieveByCredentials(array $credentials): ?Authenticatable
    {
        foreach (self::USERS as $user) {
            if ($user['email'] === ($credentials['email'] ?? null)) {
                return new GenericUser($user);
            }
        }
        return null;
    }

    public function validateCredentials(Authenticatable $user, array $credentials): bool
    {
        return hash_equals((string)$user->getAuthPassword(), (string)($credentials['password'] ?? ''));
    }
}
