<?php

declare(strict_types=1);

namespace Fastrr\Jobs\Queue;

/**
 * The `driver` of a pipeline, as in its config and in a received task's context.
 * fastrr runs `memory`, `boltdb` (kept in SQLite) and the brokers: amqp, beanstalk, sqs,
 * redis (Streams, fastrr's own), nats (JetStream), kafka; it has no nsq or google_pub_sub.
 */
enum Driver: string
{
    case Memory = 'memory';
    case AMQP = 'amqp';
    case Beanstalk = 'beanstalk';
    case BoltDB = 'boltdb';
    case SQS = 'sqs';
    case Redis = 'redis';
    case NATS = 'nats';
    case Kafka = 'kafka';
    case NSQ = 'nsq';
    case PubSub = 'google_pub_sub';
    case Unknown = 'unknown';
}
