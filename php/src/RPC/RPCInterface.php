<?php

declare(strict_types=1);

namespace Fastrr\RPC;

/**
 * Calls into the server over goridge RPC (`rpc.listen`, given to workers as RR_RPC).
 * Same shape as spiral/goridge's RPCInterface.
 */
interface RPCInterface
{
    /**
     * A copy whose calls are prefixed: withServicePrefix('informer')->call('workers', ...)
     * calls "informer.Workers".
     */
    public function withServicePrefix(string $service): self;

    /**
     * A copy that encodes payloads and decodes results with $codec.
     */
    public function withCodec(CodecInterface $codec): self;

    /**
     * @param mixed $options passed to the codec's decode()
     * @throws Exception\ServiceException when the server answers with an error
     * @throws Exception\RPCException on a protocol or transport failure
     */
    public function call(string $method, mixed $payload, mixed $options = null): mixed;
}
