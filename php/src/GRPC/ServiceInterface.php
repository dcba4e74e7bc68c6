<?php

declare(strict_types=1);

namespace Fastrr\GRPC;

/**
 * What every generated service interface extends. The interface carries the
 * service's full proto name in a `NAME` constant ("<package>.<Service>");
 * its methods are `Name(ContextInterface $ctx, InputMessage $in): OutputMessage`.
 */
interface ServiceInterface
{
}
