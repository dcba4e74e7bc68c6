"""What a job looks like in Redis: the stream entry's fields and the delayed set's
packing (scripts.py: the Lua that reads them back in Redis).

Entry fields (RoadRunner's header names, so a producer that writes them by hand
is understood; RoadRunner itself has no redis jobs driver to be compatible with):

    rr_id, rr_job, rr_pipeline      the job's id, name and pipeline
    rr_headers                      JSON {name: [values]}
    rr_priority, rr_delay           ints (the delay it was pushed with, in seconds)
    rr_auto_ack                     "true" / "false"
    fastrr_attempts                 failed runs so far (max_attempts stops poison loops)
    fastrr_pushed                   push time, Unix seconds (push-to-ack latency)
    payload                         the payload, bytes as they are

An entry with no rr_* field is foreign (written by another program): it becomes
a job named "deduced_by_rr" with a new uuid, as RoadRunner names such messages,
whose payload is the JSON object of the entry's fields.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastrr.jobs.job import Job

FOREIGN_NAME = "deduced_by_rr"
ATTEMPTS = "fastrr_attempts"
PUSHED = "fastrr_pushed"
PAYLOAD = "payload"


def job_fields(job: Job, pipeline: str) -> dict[str, Any]:
    return {
        "rr_id": job.id, "rr_job": job.name, "rr_pipeline": pipeline,
        "rr_headers": json.dumps(job.headers, separators=(",", ":"), ensure_ascii=False),
        "rr_priority": str(job.priority), "rr_delay": str(int(job.delay)),
        "rr_auto_ack": "true" if job.auto_ack else "false",
        ATTEMPTS: str(job.attempts), PUSHED: repr(job.pushed_at), PAYLOAD: job.payload,
    }


def pack(fields: dict[str, Any]) -> bytes:
    """Fields as "<len>:<bytes>" pairs, flat, for the delayed hash (unpacked by MOVE_DUE in Lua)."""
    out = bytearray()
    for key, value in fields.items():
        for part in (key, value):
            raw = part if isinstance(part, bytes) else str(part).encode()
            out += b"%d:" % len(raw) + raw
    return bytes(out)


def _text(fields: dict[bytes, bytes], key: str) -> str | None:
    value = fields.get(key.encode())
    return None if value is None else value.decode("utf-8", "replace")


def _int(fields: dict[bytes, bytes], key: str, default: int) -> int:
    text = _text(fields, key)
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _headers(text: str | None) -> dict[str, list[str]]:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, list[str]] = {}
    for name, values in raw.items():
        vals = values if isinstance(values, list) else [values]
        out[str(name)] = [v if isinstance(v, str) else json.dumps(v) for v in vals if v is not None]
    return out


def entry_job(fields: dict[bytes, bytes], pipeline: str, default_priority: int) -> Job:
    """The job an entry carries (a foreign entry's too)."""
    if not any(key.startswith(b"rr_") for key in fields):
        body = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()}
        return Job(id=str(uuid.uuid4()), name=FOREIGN_NAME, payload=json.dumps(body).encode(),
                   pipeline=pipeline, priority=default_priority)
    pushed = _text(fields, PUSHED)
    try:
        pushed_at = float(pushed) if pushed else time.time()
    except ValueError:
        pushed_at = time.time()
    return Job(
        id=_text(fields, "rr_id") or str(uuid.uuid4()),
        name=_text(fields, "rr_job") or FOREIGN_NAME,
        payload=fields.get(PAYLOAD.encode(), b""),
        pipeline=pipeline,
        headers=_headers(_text(fields, "rr_headers")),
        priority=_int(fields, "rr_priority", default_priority),
        auto_ack=(_text(fields, "rr_auto_ack") or "").strip().lower() in ("true", "1"),
        attempts=max(0, _int(fields, ATTEMPTS, 0)),
        pushed_at=pushed_at,
    )
