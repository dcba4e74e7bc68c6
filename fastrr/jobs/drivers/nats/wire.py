"""How a job travels on NATS: RoadRunner's nats message format, and fastrr's additions.

RoadRunner's nats driver (`natsjobs/driver.go Push`, `item.go`) publishes one
message per job to the pipeline's subject:
- body: JSON `{"job": name, "id": id, "payload": <base64 of the bytes>,
  "options": {"priority": N, "pipeline": name, "auto_ack": bool}}` (Go
  encodes the `[]byte` payload as base64; RoadRunner before 2023.3 had a
  string payload, which is read here as its UTF-8 text);
- NATS headers: the job's headers. RoadRunner's consumer hands every NATS
  header of the message to PHP, plus `x-nats-subject`.
fastrr writes the same, so a RoadRunner consumer runs fastrr's jobs and fastrr
runs RoadRunner's, and adds:
- `"headers"` in the body, the job's headers with every value (NATS headers
  go through nats-py as one value per name: a header with several values is
  sent there joined by ", "); RoadRunner's Go decoder ignores the key;
- NATS header `Fastrr-Attempts`: failed runs so far (max_attempts stops a
  poison job, RoadRunner's #1089), and `Fastrr-Due`: the wall-clock time a
  delayed job is due (fastrr's delayed-jobs stream, driver.py). Both are
  taken out of the headers PHP sees.
A message whose body is not such an envelope is *foreign*: RoadRunner makes it
a job named "deduced_by_rr" with a new uuid and the raw body as payload, and
so does fastrr; one with RoadRunner's amqp-style `rr_id`/`rr_job` headers (as
other RoadRunner drivers write them) is read from those instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Any

from fastrr.jobs.job import Job

ATTEMPTS_HEADER = "Fastrr-Attempts"
DUE_HEADER = "Fastrr-Due"
SUBJECT_HEADER = "x-nats-subject"  # RoadRunner adds it to the headers PHP sees
FOREIGN_JOB = "deduced_by_rr"
_OWN = {ATTEMPTS_HEADER.lower(), DUE_HEADER.lower()}
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # what nats-py accepts as a header name


def encode(job: Job) -> bytes:
    """The message body, RoadRunner's keys in its order (plus fastrr's `headers`)."""
    envelope = {
        "job": job.name,
        "id": job.id,
        "payload": base64.b64encode(job.payload).decode(),
        "headers": job.headers,
        "options": {"priority": job.priority, "pipeline": job.pipeline, "auto_ack": job.auto_ack},
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def nats_headers(job: Job, due: float | None = None) -> dict[str, str]:
    """The NATS headers of a job's message: its headers (names NATS can carry), the attempts, the due time."""
    out: dict[str, str] = {}
    for name, values in job.headers.items():
        if values and _HEADER_NAME.fullmatch(name) and name.lower() not in _OWN:
            out[name] = ", ".join(values)
    if job.attempts:
        out[ATTEMPTS_HEADER] = str(job.attempts)
    if due is not None:
        out[DUE_HEADER] = f"{due:.3f}"
    return out


def due_time(headers: dict[str, str] | None) -> float:
    """The wall-clock time a delayed message is due (0: now)."""
    try:
        return float((headers or {}).get(DUE_HEADER, 0))
    except ValueError:
        return 0.0


def _payload(value: Any) -> bytes | None:
    if value is None:
        return b""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value.encode()  # RoadRunner before 2023.3: the payload as a string


def _header_map(value: Any) -> dict[str, list[str]] | None:
    if not isinstance(value, dict):
        return None
    out: dict[str, list[str]] = {}
    for name, values in value.items():
        if isinstance(values, list):
            out[str(name)] = [v if isinstance(v, str) else json.dumps(v) for v in values]
        elif values is not None:
            out[str(name)] = [values if isinstance(values, str) else json.dumps(values)]
    return out


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def decode(body: bytes, headers: dict[str, str] | None, subject: str, pipeline: str,
           default_priority: int) -> Job:
    """The job a message carries (never fails: a foreign message becomes a `deduced_by_rr` job)."""
    nats = {k: v for k, v in (headers or {}).items() if k.lower() not in _OWN}
    try:
        attempts = max(0, int((headers or {}).get(ATTEMPTS_HEADER, 0)))
    except ValueError:
        attempts = 0
    from_nats = {k: [v] for k, v in nats.items()}
    job: Job | None = None
    try:
        envelope = json.loads(body) if body[:1] == b"{" else None
    except ValueError:
        envelope = None
    if (isinstance(envelope, dict) and isinstance(envelope.get("id"), str) and envelope["id"]
            and isinstance(envelope.get("job"), str)):
        payload = _payload(envelope.get("payload"))
        options = envelope.get("options") if isinstance(envelope.get("options"), dict) else {}
        if payload is not None:
            try:
                priority = int(options.get("priority") or 0)
            except (TypeError, ValueError):
                priority = 0
            job_headers = _header_map(envelope.get("headers"))
            job = Job(id=envelope["id"], name=envelope["job"], payload=payload, pipeline=pipeline,
                      headers=from_nats if job_headers is None else job_headers,
                      priority=priority or default_priority, auto_ack=_bool(options.get("auto_ack")))
    if job is None and nats.get("rr_id") and "rr_job" in nats:
        try:
            rr_headers = _header_map(json.loads(nats.get("rr_headers") or "{}")) or {}
        except ValueError:
            rr_headers = {}
        try:
            priority = int(nats.get("rr_priority") or 0)
        except ValueError:
            priority = 0
        job = Job(id=nats["rr_id"], name=nats["rr_job"], payload=body, pipeline=pipeline, headers=rr_headers,
                  priority=priority or default_priority, auto_ack=_bool(nats.get("rr_auto_ack")))
    if job is None:
        job = Job(id=str(uuid.uuid4()), name=FOREIGN_JOB, payload=body, pipeline=pipeline, headers=from_nats,
                  priority=default_priority)
    job.attempts = attempts
    job.headers = {**job.headers, SUBJECT_HEADER: [subject]}
    return job
