"""A job as a Kafka record, and a record as a job.

A pushed job becomes one record on the pipeline's topic:
- key: the job id (as RoadRunner's kafka driver: with the default
  partitioner a job and its retried copies land on the same partition);
- value: the payload, as pushed;
- headers, RoadRunner's first (so RoadRunner consumers read fastrr's records):
  `rr_job`, `rr_pipeline`, `rr_priority` (8 bytes little endian, as
  RoadRunner's kafka driver packs it), `rr_auto_ack` (\\x01, only when set),
  and each job header with its first value under its own name (RoadRunner
  keeps one value per key); then `rr_id`, `rr_headers` (JSON of every header
  with all its values, which fastrr reads back in preference), `rr_delay`
  (seconds, when delayed), and fastrr's own `fastrr_attempts` (failed runs
  so far, RoadRunner's #1089) and `fastrr_due` (epoch milliseconds before
  which the record must not run: Kafka has no delayed delivery).

A record without `rr_job` (a foreign producer's) becomes a job named
"deduced_by_rr" whose id is `rr_id`, else the record key, else a new uuid,
with its record headers as job headers (one value each).
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastrr.jobs.job import Job

DEDUCED = "deduced_by_rr"
ATTEMPTS = "fastrr_attempts"
DUE = "fastrr_due"
RR_KEYS = ("rr_id", "rr_job", "rr_pipeline", "rr_headers", "rr_delay", "rr_priority", "rr_auto_ack")
RESERVED = (*RR_KEYS, ATTEMPTS, DUE)


def pack(job: Job, now: float | None = None) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The record key and headers of `job` (its payload is the value)."""
    headers: list[tuple[str, bytes]] = [
        ("rr_job", job.name.encode()),
        ("rr_pipeline", job.pipeline.encode()),
        ("rr_priority", struct.pack("<q", job.priority)),
    ]
    if job.auto_ack:
        headers.append(("rr_auto_ack", b"\x01"))
    for name, values in job.headers.items():
        if values and name not in RESERVED:
            headers.append((name, values[0].encode()))
    headers.append(("rr_id", job.id.encode()))
    if job.headers:
        headers.append(("rr_headers", json.dumps(job.headers, separators=(",", ":")).encode()))
    if job.delay > 0:
        due = (time.time() if now is None else now) + job.delay
        headers.append(("rr_delay", str(int(job.delay)).encode()))
        headers.append((DUE, str(int(due * 1000)).encode()))
    if job.attempts:
        headers.append((ATTEMPTS, str(job.attempts).encode()))
    return job.id.encode(), headers


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _int(value: bytes | None, default: int) -> int:
    try:
        return int(_text(value).strip())
    except ValueError:
        return default


def _priority(value: bytes | None, default: int) -> int:
    if value and len(value) == 8:  # RoadRunner: binary.LittleEndian uint64
        return int(struct.unpack("<q", value)[0]) or default
    return _int(value, default) or default


@dataclass
class Unpacked:
    job: Job
    due: float  # wall time before which it must not run (0: now)
    foreign: bool


def unpack(record: Any, pipeline: str, default_priority: int) -> Unpacked:
    """The job a consumed aiokafka ConsumerRecord carries."""
    raw: dict[str, bytes] = {}
    plain: dict[str, list[str]] = {}
    for name, value in record.headers or ():
        raw.setdefault(name, value)
        if name not in RESERVED:
            plain.setdefault(name, [_text(value)])
    headers = plain
    if "rr_headers" in raw:
        try:
            decoded = json.loads(raw["rr_headers"])
            if isinstance(decoded, dict):
                headers = {str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
                           for k, v in decoded.items()}
        except ValueError:
            pass  # a damaged rr_headers: the single-valued record headers still say something
    foreign = "rr_job" not in raw
    jid = _text(raw.get("rr_id")) or _text(record.key) or str(uuid.uuid4())
    auto = raw.get("rr_auto_ack")
    job = Job(id=jid, name=_text(raw.get("rr_job")) or DEDUCED, payload=record.value or b"", pipeline=pipeline,
              headers=headers, priority=_priority(raw.get("rr_priority"), default_priority),
              auto_ack=bool(auto) and auto not in (b"\x00", b"false", b"0"),
              attempts=max(0, _int(raw.get(ATTEMPTS), 0)), topic=record.topic,  # a retry's copy goes back there
              pushed_at=record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else time.time())
    due = _int(raw.get(DUE), 0) / 1000
    return Unpacked(job, due if due > time.time() else 0.0, foreign)
