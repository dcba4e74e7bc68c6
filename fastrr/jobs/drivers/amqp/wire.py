"""How a job is written to and read from an AMQP message (driver.py says why it is so):
RoadRunner's rr_* headers plus fastrr's attempt count, the delay queues' names and
arguments, and the texts of broker errors."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from aiormq.abc import DeliveredMessage
from aiormq.exceptions import AMQPError
from yarl import URL

from fastrr.jobs.job import Job

ATTEMPTS_HEADER = "fastrr_attempts"
FOREIGN_JOB = "deduced_by_rr"  # RoadRunner's name for a message without rr_job
DELAY_EXPIRES_MARGIN_MS = 60_000  # keeps a short delay's queue from expiring between declare and publish
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9\-_.:@#,/+ ]")  # what AMQP (pamqp) accepts in a queue name


def safe_addr(addr: str) -> str:
    """The broker URL with its password hidden (for logs and errors)."""
    url = URL(addr)
    return str(url.with_password("***")) if url.password else addr


def job_headers(job: Job, delay: float) -> dict[str, Any]:
    """The message headers of `job`, RoadRunner's keys and types (rr_headers as bytes)."""
    return {
        "rr_id": job.id, "rr_job": job.name, "rr_pipeline": job.pipeline,
        "rr_headers": bytearray(json.dumps(job.headers, separators=(",", ":")).encode()),
        "rr_delay": int(delay), "rr_priority": job.priority, "rr_auto_ack": job.auto_ack,
        ATTEMPTS_HEADER: job.attempts,
    }


def job_from_message(message: DeliveredMessage, pipeline: str, priority: int) -> tuple[Job, bool]:
    """The job a delivery carries, and whether its rr_headers were unreadable. A
    message without rr_* headers (a foreign producer) gets a new id and job
    "deduced_by_rr", as in RoadRunner; the job always belongs to `pipeline`."""
    headers: dict[str, Any] = dict(message.header.properties.headers or {})
    rr_headers: dict[str, list[str]] = {}
    bad = False
    raw = headers.get("rr_headers")
    if raw:
        try:
            parsed = json.loads(_text(raw))
        except ValueError:
            parsed, bad = None, True
        if isinstance(parsed, dict):
            rr_headers = {str(k): [str(x) for x in v] if isinstance(v, list) else [str(v)]
                          for k, v in parsed.items() if v is not None}
    job_id, job_name = headers.get("rr_id"), headers.get("rr_job")
    job = Job(id=_text(job_id) if job_id else str(uuid.uuid4()),
              name=_text(job_name) if job_name else FOREIGN_JOB,
              payload=bytes(message.body), pipeline=pipeline, headers=rr_headers,
              priority=_int(headers.get("rr_priority"), priority),
              auto_ack=headers.get("rr_auto_ack") is True,
              attempts=_int(headers.get(ATTEMPTS_HEADER), 0))
    return job, bad


def delay_queue(pipeline: str, ms: int, exchange: str, routing_key: str) -> tuple[str, dict[str, Any]]:
    """The delay queue for `ms` towards (exchange, routing key), and its arguments:
    `delayed-<ms>.<pipeline>.<exchange>.<routing key>` (a retry goes through the
    default exchange, named `direct` here), in the characters AMQP names allow."""
    name = _NAME_UNSAFE.sub("_", f"delayed-{ms}.{pipeline}.{exchange or 'direct'}.{routing_key}")[:255]
    return name, {"x-dead-letter-exchange": exchange, "x-dead-letter-routing-key": routing_key,
                  "x-message-ttl": ms, "x-expires": 2 * ms + DELAY_EXPIRES_MARGIN_MS}


def error_text(exc: BaseException | None) -> str:
    if exc is None:
        return "closed"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and not isinstance(exc, AMQPError):
        return f"{type(exc).__name__}: {text}"
    return text


def future_error(fut: asyncio.Future[Any]) -> str:
    """Why a connection's or channel's `closing` future finished."""
    if fut.cancelled():
        return "closed"
    exc = fut.exception()
    return error_text(exc) if exc is not None else "closed by the broker"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError):
        return default
