<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue\Kafka;

/** producer_options.compression_codec */
enum CompressionCodec: string
{
    case Gzip = 'gzip';
    case Snappy = 'snappy';
    case Lz4 = 'lz4';
    case Zstd = 'zstd';
}
