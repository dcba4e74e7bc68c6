<?php

declare(strict_types=1);

namespace Fastrr\Logger;

/**
 * The levels the server's `app` logger has, as `RoadRunner\Logger\LogLevel`:
 * the case name is the RPC method (`app.Error`, `app.ErrorWithContext`, ...).
 * `Log` is not a level: it writes the message as it is to the server's stderr.
 */
enum LogLevel
{
    case Error;
    case Warning;
    case Info;
    case Debug;
    case Log;
}
