<?php

// fastrr bench, jobs-amqp: the plain PHP peer. How PHP teams consume RabbitMQ without an
// application server: one long-running process with Debian's php-amqplib, basic.qos
// $PREFETCH, basic.consume, and per message the same work as bench/apps/jobs/consumer.php
// (read the job's name and id from its headers, then ack). It writes how many it acked to
// $COUNT_FILE (at start, every 500 acks, and whenever it waited 50 ms for a message), so
// the bench knows when a batch is done without asking the broker.

declare(strict_types=1);

require '/usr/share/php/PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;

$queue = (string)getenv('QUEUE');
$countFile = (string)getenv('COUNT_FILE');
$prefetch = (int)(getenv('PREFETCH') ?: 10);

$connection = new AMQPStreamConnection((string)(getenv('AMQP_HOST') ?: '127.0.0.1'), (int)(getenv('AMQP_PORT') ?: 5672),
    (string)(getenv('AMQP_USER') ?: 'guest'), (string)(getenv('AMQP_PASSWORD') ?: 'guest'));
$channel = $connection->channel();
$channel->basic_qos(0, $prefetch, false);

$acked = 0;
$written = -1;
$write = static function () use (&$acked, &$written, $countFile): void {
    if ($acked !== $written) {
        file_put_contents($countFile . '.tmp', (string)$acked);
        rename($countFile . '.tmp', $countFile);
        $written = $acked;
    }
};

$channel->basic_consume($queue, '', false, false, false, false, static function (AMQPMessage $message) use (&$acked): void {
    $headers = $message->has('application_headers') ? $message->get('application_headers') : null;
    $fields = $headers instanceof AMQPTable ? $headers->getNativeData() : [];
    $job = (string)($fields['rr_job'] ?? 'deduced');
    $id = (string)($fields['rr_id'] ?? '');
    if ($job === '' && $id === '') {
        throw new RuntimeException('a message without a job');
    }
    $message->ack();
    $acked++;
});
$write();

while ($channel->is_consuming()) {
    try {
        $channel->wait(null, false, 0.05);
        if ($acked - $written >= 500) {
            $write();
        }
    } catch (AMQPTimeoutException) {
        $write();
    }
}
