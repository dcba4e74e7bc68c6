"""The sqs driver's keys, RoadRunner's names and defaults (rr-jobs.md §1.2):

    sqs:                      # every key may be left out: AWS's own environment is used then
      key: ...                # else AWS_ACCESS_KEY_ID (and the rest of the AWS credential chain)
      secret: ...             # else AWS_SECRET_ACCESS_KEY
      session_token: ...      # else AWS_SESSION_TOKEN
      region: us-east-1       # else AWS_REGION / AWS_DEFAULT_REGION / the AWS config file
      endpoint: http://...    # else AWS_ENDPOINT_URL(_SQS), else AWS's own endpoint

    jobs:
      pipelines:
        mails:
          driver: sqs
          config:
            queue: default                  # a name ending in .fifo is a FIFO queue
            prefetch: 1                     # messages per ReceiveMessage, 1..10 (RR clamps; so does fastrr)
            max_messages_in_flight: 0       # received and not finished; 0: prefetch
            visibility_timeout: 0           # s, <= 43200; 0: the queue's own
            error_visibility_timeout: 0     # s, <= 43200; with retain_failed_jobs
            retain_failed_jobs: false
            wait_time_seconds: 0            # long polling, 0..20 (Declare key: wait_time)
            skip_queue_declaration: false   # true: GetQueueUrl only, never CreateQueue
            message_group_id: ""            # FIFO queues: required
            attributes: {}                  # CreateQueue attributes (in Declare: a JSON string)
            tags: {}                        # CreateQueue tags (in Declare: a JSON string)

RoadRunner clamps out-of-range timeouts silently; fastrr clamps only
`prefetch` (as RoadRunner, its documented behaviour) and refuses the rest
with the key path in the error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_int, parse_str
from fastrr.jobs.config import PipelineConfig, Reader

GLOBAL_SECTION: str | None = "sqs"
MAX_VISIBILITY = 43200
MAX_WAIT = 20
MAX_DELAY = 900
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}(\.fifo)?|[A-Za-z0-9_-]{1,80}")
# CreateQueue attribute names, matched without regard to case (RoadRunner maps lower-case keys to them)
QUEUE_ATTRIBUTES = ("Policy", "VisibilityTimeout", "MaximumMessageSize", "MessageRetentionPeriod", "DelaySeconds",
                    "RedrivePolicy", "FifoQueue", "ContentBasedDeduplication", "KmsMasterKeyId",
                    "KmsDataKeyReusePeriodSeconds", "DeduplicationScope", "FifoThroughputLimit",
                    "RedriveAllowPolicy", "SqsManagedSseEnabled", "ReceiveMessageWaitTimeSeconds")


@dataclass
class SqsSettings:
    key: str = ""
    secret: str = ""
    region: str = ""
    session_token: str = ""
    endpoint: str = ""


def parse_global(section: Section) -> SqsSettings:
    return SqsSettings(**{name: section.get(name, parse_str, "").strip()
                          for name in ("key", "secret", "region", "session_token", "endpoint")})


def _bounded(maximum: int, unit: str) -> Reader:
    def read(path: str, value: Any) -> int:
        n = parse_int(path, value)
        if n > maximum:
            raise ConfigError(path, f"expected 0..{maximum} {unit}, got {n}")
        return n
    return read


def _prefetch(path: str, value: Any) -> int:
    return min(max(parse_int(path, value), 1), 10)  # RoadRunner's clamp (SQS returns at most 10 a call)


def _queue(path: str, value: Any) -> str:
    text = parse_str(path, value)
    if not QUEUE_NAME.fullmatch(text):
        raise ConfigError(path, "expected an SQS queue name (up to 80 letters, digits, - and _, or a name "
                                f"ending in .fifo), got {value!r}")
    return text


def _string_map(path: str, value: Any) -> dict[str, str]:
    """A YAML map, or (Declare) a JSON object string; values made strings (nested ones as JSON)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ConfigError(path, f"expected a JSON object, got {value!r} ({exc})") from None
        if isinstance(value, list) and not value:
            value = {}  # PHP's empty array
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a map of names to values, got {type(value).__name__} {value!r}")
    out = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[str(key)] = "true" if item else "false"
        elif isinstance(item, (dict, list)):
            out[str(key)] = json.dumps(item, separators=(",", ":"))
        elif isinstance(item, (str, int, float)):
            out[str(key)] = str(item)
        else:
            raise ConfigError(f"{path}.{key}", f"expected a value, got {item!r}")
    return out


def _attributes(path: str, value: Any) -> dict[str, str]:
    names = {name.lower(): name for name in QUEUE_ATTRIBUTES}
    out = {}
    for key, item in _string_map(path, value).items():
        name = names.get(key.lower())
        if name is None:
            raise ConfigError(f"{path}.{key}", f"not an SQS queue attribute (known: {', '.join(QUEUE_ATTRIBUTES)})")
        out[name] = item
    return out


OPTIONS: dict[str, tuple[Reader, Any]] = {
    "queue": (_queue, "default"),
    "prefetch": (_prefetch, 1),
    "max_messages_in_flight": (parse_int, 0),
    "visibility_timeout": (_bounded(MAX_VISIBILITY, "seconds"), 0),
    "error_visibility_timeout": (_bounded(MAX_VISIBILITY, "seconds"), 0),
    "retain_failed_jobs": (parse_bool, False),
    "wait_time_seconds": (_bounded(MAX_WAIT, "seconds"), None),
    "wait_time": (_bounded(MAX_WAIT, "seconds"), None),  # the Declare name of wait_time_seconds
    "skip_queue_declaration": (parse_bool, False),
    "message_group_id": (parse_str, ""),
    "attributes": (_attributes, {}),
    "tags": (_string_map, {}),
}
DECLARE_DEFAULTS: dict[str, Any] = {}


def is_fifo(queue: str) -> bool:
    return queue.endswith(".fifo")


def wait_time(pipe: PipelineConfig) -> int:
    """wait_time_seconds (YAML), else wait_time (Declare's name), else 0."""
    options = pipe.options
    for key in ("wait_time_seconds", "wait_time"):
        if options.get(key) is not None:
            return int(options[key])
    return 0


def in_flight_limit(pipe: PipelineConfig) -> int:
    limit = int(pipe.options.get("max_messages_in_flight") or 0)
    return limit if limit > 0 else int(pipe.options.get("prefetch", 1))


def check(pipe: PipelineConfig, path: str) -> None:
    options = pipe.options
    if options["error_visibility_timeout"] and not options["retain_failed_jobs"]:
        raise ConfigError(f"{path}.error_visibility_timeout",
                          "takes effect only with retain_failed_jobs: true (failed jobs are re-sent otherwise)")
    group = options["message_group_id"]
    if is_fifo(options["queue"]):
        if not group:
            raise ConfigError(f"{path}.message_group_id", f"required for the FIFO queue {options['queue']!r}")
        if options["attributes"].get("FifoQueue", "true").lower() != "true":
            raise ConfigError(f"{path}.attributes.FifoQueue", "a queue named *.fifo is a FIFO queue")
    elif options["attributes"].get("FifoQueue", "false").lower() == "true":
        raise ConfigError(f"{path}.queue", "a FIFO queue's name must end in .fifo")
    if len(group) > 128:
        raise ConfigError(f"{path}.message_group_id", f"expected at most 128 characters, got {len(group)}")
    if options["wait_time_seconds"] is not None and options["wait_time"] is not None \
            and options["wait_time_seconds"] != options["wait_time"]:
        raise ConfigError(f"{path}.wait_time", "wait_time (Declare's name) and wait_time_seconds disagree: "
                                               "give one of them")
