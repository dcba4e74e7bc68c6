"""SQS messages <-> jobs (driver.py says what travels where), and SQS errors as text."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastrr.jobs.job import Job

FOREIGN_JOB = "deduced_by_rr"
RR_KEYS = ("rr_id", "rr_job", "rr_pipeline", "rr_headers", "rr_delay", "rr_priority", "rr_auto_ack")
ATTEMPTS, ENCODING = "fastrr_attempts", "fastrr_encoding"
# characters an SQS message body may not hold (its XML 1.0 rule)
SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass
class SqsHandle:
    receipt: str
    attempts: int  # the job's attempts when received: a retry with more is a failed run
    system_keys: list[str] = field(default_factory=list)  # headers added from SQS system attributes


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def encode_message(job: Job, pipeline: str, delay: int, drop: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The SendMessage fields of a job (body and attributes)."""
    headers = {k: v for k, v in job.headers.items() if k not in drop}
    attributes: dict[str, Any] = {
        "rr_id": _string(job.id), "rr_job": _string(job.name), "rr_pipeline": _string(pipeline),
        "rr_delay": _string(str(delay)), "rr_priority": {"DataType": "Number", "StringValue": str(job.priority)},
        "rr_auto_ack": _string("true" if job.auto_ack else "false"),
        "rr_headers": {"DataType": "Binary", "BinaryValue": json.dumps(headers, separators=(",", ":")).encode()},
        ATTEMPTS: {"DataType": "Number", "StringValue": str(job.attempts)},
    }
    try:
        body = job.payload.decode("utf-8")
        if SQS_TEXT.search(body):
            raise UnicodeError
    except UnicodeError:
        body = base64.b64encode(job.payload).decode("ascii")
        attributes[ENCODING] = _string("base64")
    if not body:
        body = " "
        attributes[ENCODING] = _string("empty")
    return {"MessageBody": body, "MessageAttributes": attributes}


def _attr_text(attr: dict[str, Any] | None) -> str | None:
    if not attr:
        return None
    if "StringValue" in attr:
        return str(attr["StringValue"])
    if "BinaryValue" in attr:
        raw = attr["BinaryValue"]
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return None


def to_int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def decode_message(msg: dict[str, Any], pipeline: str, default_priority: int, retain: bool) -> tuple[Job, SqsHandle]:
    attrs: dict[str, Any] = msg.get("MessageAttributes") or {}
    system: dict[str, str] = msg.get("Attributes") or {}
    body = str(msg.get("Body", ""))
    encoding = _attr_text(attrs.get(ENCODING))
    if encoding == "base64":
        try:
            payload = base64.b64decode(body, validate=True)
        except ValueError:
            payload = body.encode()
    elif encoding == "empty":
        payload = b""
    else:
        payload = body.encode()
    headers: dict[str, list[str]] = {}
    jid = _attr_text(attrs.get("rr_id"))
    if jid:
        raw = _attr_text(attrs.get("rr_headers"))
        try:
            parsed = json.loads(raw) if raw else {}
            if isinstance(parsed, dict):
                headers = {str(k): [str(x) for x in v] for k, v in parsed.items() if isinstance(v, list)}
        except ValueError:
            headers = {}
    else:  # a foreign message: its own attributes become headers
        jid = str(uuid.uuid4())
        for key, attr in attrs.items():
            text = _attr_text(attr)
            if key not in RR_KEYS and key not in (ATTEMPTS, ENCODING) and text is not None:
                headers[key] = [text]
    system_keys = [k for k in system if k not in headers]
    for key in system_keys:
        headers[key] = [str(system[key])]
    attempts = to_int(_attr_text(attrs.get(ATTEMPTS)), 0)
    if retain:  # a retained failure keeps its message: SQS's receive count carries the attempts
        attempts += max(0, to_int(system.get("ApproximateReceiveCount"), 1) - 1)
    sent = to_int(system.get("SentTimestamp"), 0)
    job = Job(id=jid, name=_attr_text(attrs.get("rr_job")) or FOREIGN_JOB, payload=payload, pipeline=pipeline,
              headers=headers, priority=to_int(_attr_text(attrs.get("rr_priority")), default_priority),
              auto_ack=_attr_text(attrs.get("rr_auto_ack")) == "true", attempts=attempts,
              pushed_at=sent / 1000 if sent else time.time())
    return job, SqsHandle(str(msg["ReceiptHandle"]), attempts, system_keys)


def describe(exc: BaseException) -> str:
    """SQS's error code and message, or the transport's error, on one line."""
    return " ".join(_describe(exc).split())


def _describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        code = str(response["Error"].get("Code", ""))
        message = str(response["Error"].get("Message", ""))
        if message.startswith("<?xml"):  # an XML error body botocore did not parse (moto's auth errors)
            found_code = re.search(r"<Code>(.*?)</Code>", message)
            found_message = re.search(r"<Message>(.*?)</Message>", message)
            code = found_code.group(1) if found_code else code
            message = found_message.group(1) if found_message else ""
        return f"{code}: {message}" if message else code
    text = str(exc)
    return text or type(exc).__name__


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        return str(response["Error"].get("Code", ""))
    return ""
