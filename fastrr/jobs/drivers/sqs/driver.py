"""The sqs driver: a pipeline is an Amazon SQS queue (through aiobotocore).

What maps to what:
- push: SendMessageBatch (10 at a time); a job counts as pushed when SQS
  answered it Successful, so it is stored before Push returns. The job
  travels as RoadRunner's sqs driver sends it: the payload is the body, and
  MessageAttributes rr_id, rr_job, rr_pipeline, rr_delay, rr_priority (Number),
  rr_auto_ack and rr_headers (Binary, JSON), so RoadRunner producers and
  consumers interoperate; fastrr adds fastrr_attempts (the failed runs so
  far, which max_attempts reads) and, for a payload SQS cannot carry as text
  (not UTF-8, characters SQS refuses, or empty), fastrr_encoding "base64" /
  "empty". A message without rr_id (another producer's) becomes a job named
  "deduced_by_rr" with a new uuid, its other attributes as headers, as RR.
  As RR, the SQS system attributes (ApproximateReceiveCount, SentTimestamp,
  ...) are added to the headers PHP sees; they are not copied into retries.
- Delays are SQS's DelaySeconds (whole seconds, rounded up). A push delay
  over 900 s is an error, as in RoadRunner (SQS's limit; fastrr does not
  re-send in 900 s hops). FIFO queues (names ending in .fifo) take no
  per-message delay: a push with a delay is an error; a retry's delay is
  not honoured there (the copy is due at once). FIFO messages carry
  message_group_id and the job id as MessageDeduplicationId (a retry's copy
  a new one, or SQS would drop it as a duplicate for 5 minutes).
- Priority: SQS has none; rr_priority orders the jobs fastrr has received.
- consume: ReceiveMessage (prefetch per call, wait_time_seconds long
  polling) while running, with at most max_messages_in_flight received
  and unfinished. ack = DeleteMessage; retry = SendMessage a copy (delay,
  merged headers, attempts) then DeleteMessage the original; with
  retain_failed_jobs a failed run instead keeps its message
  (ChangeMessageVisibility error_visibility_timeout, or its retry delay, or
  nothing: back after the visibility timeout), so an SQS redrive policy
  counts its receives; its attempts are then fastrr_attempts +
  ApproximateReceiveCount - 1. release = ChangeMessageVisibility 0.
- Long jobs: every message received and unfinished gets its visibility
  extended (ChangeMessageVisibilityBatch) every third of the visibility
  timeout, so SQS does not hand it to another consumer while it runs. A
  killed fastrr's messages come back after the visibility timeout.
- Faults: SQS is stateless HTTP. open() fails with a DriverError naming the
  endpoint and SQS's error. After that every failed call is logged and the
  receive loop goes on with exponential backoff (BACKOFF_MIN to
  BACKOFF_MAX), `error` set until a call succeeds again; a queue that
  disappeared (NonExistentQueue) is created again unless
  skip_queue_declaration. A push that fails is a DriverError; a delete that
  fails is tried DELETE_TRIES times, then the message comes back after its
  visibility timeout (a duplicate, never a loss).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import Any

from fastrr.jobs.drivers.base import Driver, DriverError
from fastrr.jobs.drivers.sqs.config import MAX_DELAY, SqsSettings, in_flight_limit, is_fifo, wait_time
from fastrr.jobs.drivers.sqs.messages import SqsHandle, decode_message, describe, encode_message, error_code, to_int
from fastrr.jobs.job import Delivery, Job

BACKOFF_MIN = 0.2
BACKOFF_MAX = 30.0
EMPTY_POLL = 0.25  # seconds between short polls of an empty queue (wait_time_seconds 0)
STATS_EVERY = 1.0
DELETE_TRIES = 3
BATCH_BYTES = 200_000  # SendMessageBatch takes 256 KiB in all; leave room for the attributes
DEFAULT_VISIBILITY = 30  # SQS's default, when the queue's attribute cannot be read
NON_EXISTENT = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class SqsDriver(Driver):
    name = "sqs"
    broker: SqsSettings

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.broker is None:
            self.broker = SqsSettings()
        options = self.pipe.options
        self.queue: str = options.get("queue", "default")
        self.fifo = is_fifo(self.queue)
        self.batch = int(options.get("prefetch", 1))
        self.limit = in_flight_limit(self.pipe)
        self.wait = wait_time(self.pipe)
        self.visibility = int(options.get("visibility_timeout", 0))
        self.error_visibility = int(options.get("error_visibility_timeout", 0))
        self.retain = bool(options.get("retain_failed_jobs", False))
        self.skip_declare = bool(options.get("skip_queue_declaration", False))
        self.group = str(options.get("message_group_id", ""))
        self.attributes = dict(options.get("attributes") or {})
        if self.fifo:
            self.attributes.setdefault("FifoQueue", "true")
        self.tags = dict(options.get("tags") or {})
        self.client: Any = None
        self._client_cm: Any = None
        self.url = ""
        self.heartbeat_visibility = self.visibility or DEFAULT_VISIBILITY
        self.in_flight: dict[str, Delivery] = {}  # receipt handle -> delivery
        self.closed = False
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._receive_error = self._api_error = ""
        self._queue_counts = {"active": 0, "delayed": 0}

    @property
    def prefetch(self) -> int:
        return self.limit

    @property
    def queue_name(self) -> str:
        return self.queue

    @property
    def where(self) -> str:
        return self.broker.endpoint or f"AWS SQS ({self.broker.region or 'region from the environment'})"

    def _set_error(self, receive: str | None = None, api: str | None = None) -> None:
        if receive is not None:
            self._receive_error = receive
        if api is not None:
            self._api_error = api
        self.error = self._receive_error or self._api_error

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        from aiobotocore.session import get_session
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        b = self.broker
        kwargs: dict[str, Any] = {}
        if b.region:
            kwargs["region_name"] = b.region
        if b.key and b.secret:
            kwargs.update(aws_access_key_id=b.key, aws_secret_access_key=b.secret,
                          aws_session_token=b.session_token or None)
        if b.endpoint:
            kwargs["endpoint_url"] = b.endpoint
        config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5,
                        read_timeout=self.wait + 15, max_pool_connections=max(10, self.limit + 4))
        try:
            self._client_cm = get_session().create_client("sqs", config=config, **kwargs)
            self.client = await self._client_cm.__aenter__()
            await self._declare()
            attrs = await self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["VisibilityTimeout"])
        except (BotoCoreError, ClientError, OSError, ValueError) as exc:
            await self._close_client()
            raise DriverError(f"sqs queue {self.queue} at {self.where}: {describe(exc)}") from None
        if not self.visibility:
            self.heartbeat_visibility = to_int(attrs.get("Attributes", {}).get("VisibilityTimeout"),
                                             DEFAULT_VISIBILITY)
        await self._read_stats()
        self._loops = [asyncio.ensure_future(self._stats_loop()), asyncio.ensure_future(self._heartbeat_loop())]

    async def _declare(self) -> None:
        if self.skip_declare:
            self.url = (await self.client.get_queue_url(QueueName=self.queue))["QueueUrl"]
            return
        try:
            answer = await self.client.create_queue(QueueName=self.queue, Attributes=self.attributes,
                                                    tags=self.tags)
        except Exception as exc:
            if error_code(exc) not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            # the queue exists with other attributes: use it as it is (RoadRunner does the same)
            answer = await self.client.get_queue_url(QueueName=self.queue)
        self.url = answer["QueueUrl"]

    async def _close_client(self) -> None:
        if self._client_cm is not None:
            try:
                await self._client_cm.__aexit__(None, None, None)
            except Exception as exc:  # closing a broken HTTP session: nothing left to save
                self.log.debug("sqs client close failed", pipeline=self.pipe.name, error=describe(exc))
            self._client_cm = self.client = None

    async def run(self) -> None:
        self.running = True
        if not any(t.get_name() == "receive" for t in self._loops):
            task = asyncio.ensure_future(self._receive_forever())
            task.set_name("receive")
            self._loops.append(task)
        self.wake()

    async def pause(self) -> None:
        self.running = False
        self.wake()

    async def close(self) -> None:
        self.running = False
        self.closed = True
        self.wake()
        if self._tasks:  # acks, retries and releases under way
            await asyncio.wait(set(self._tasks), timeout=10.0)
        for task in self._loops:
            task.cancel()  # a receive still out: what it got comes back after the visibility timeout
        if self._loops:
            await asyncio.wait(self._loops, timeout=5.0)
        await self._close_client()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- push -----------------------------------------------------------------------------

    def _check_delay(self, delay: float, job: Job) -> int:
        seconds = math.ceil(delay)
        if seconds > MAX_DELAY:
            raise DriverError(f"pipeline {self.pipe.name}: job {job.id}: SQS delays at most {MAX_DELAY} s "
                              f"(15 minutes), the job asks {seconds} s")
        if seconds and self.fifo:
            raise DriverError(f"pipeline {self.pipe.name}: job {job.id}: the FIFO queue {self.queue} takes no "
                              f"per-message delay (asked {seconds} s)")
        return seconds

    def _entry(self, job: Job, delay: int, dedup: str, drop: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        entry = encode_message(job, self.pipe.name, delay, drop)
        if self.fifo:
            entry.update(MessageGroupId=self.group, MessageDeduplicationId=dedup)
            return entry
        if delay:
            entry["DelaySeconds"] = delay
        if self.group:
            entry["MessageGroupId"] = self.group
        return entry

    async def push(self, jobs: list[Job]) -> None:
        if self.closed or self.client is None:
            raise DriverError(f"pipeline {self.pipe.name} is closed")
        entries = [self._entry(job, self._check_delay(job.delay, job), job.id) for job in jobs]
        start = 0
        try:
            while start < len(entries):
                end, size = start, 0
                while end < len(entries) and end - start < 10:
                    size += len(entries[end]["MessageBody"].encode())
                    if size > BATCH_BYTES and end > start:
                        break
                    end += 1
                chunk = [{"Id": str(i), **entries[i]} for i in range(start, end)]
                answer = await self.client.send_message_batch(QueueUrl=self.url, Entries=chunk)
                failed = answer.get("Failed") or []
                self.pushed += len(answer.get("Successful") or [])
                if failed:
                    first = failed[0]
                    raise DriverError(f"pipeline {self.pipe.name}: SQS refused {len(failed)} of {len(chunk)} jobs "
                                      f"(first: {first.get('Code')}: {first.get('Message', '')})")
                start = end
        except DriverError:
            raise
        except Exception as exc:
            why = describe(exc)
            self._set_error(api=f"sqs at {self.where}: {why}")
            raise DriverError(f"pipeline {self.pipe.name}: cannot send the job to sqs queue {self.queue} at "
                              f"{self.where}: {why}") from None
        self._set_error(api="")
        await self._read_stats()

    # -- stats and heartbeat -----------------------------------------------------------------

    async def _read_stats(self) -> None:
        try:
            answer = await self.client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"])
        except Exception as exc:
            self._set_error(api=f"sqs at {self.where}: {describe(exc)}")
            return
        self._set_error(api="")
        attrs = answer.get("Attributes", {})
        self._queue_counts = {"active": to_int(attrs.get("ApproximateNumberOfMessages"), 0),
                              "delayed": to_int(attrs.get("ApproximateNumberOfMessagesDelayed"), 0)}

    async def _stats_loop(self) -> None:
        while not self.closed:
            await asyncio.sleep(STATS_EVERY)
            if self.client is not None:
                await self._read_stats()

    async def _heartbeat_loop(self) -> None:
        """Extend the visibility of every unfinished message, a third of the timeout ahead."""
        every = max(1.0, self.heartbeat_visibility / 3)
        while not self.closed:
            await asyncio.sleep(every)
            receipts = [r for r, d in self.in_flight.items() if not d.done]
            for i in range(0, len(receipts), 10):
                chunk = receipts[i:i + 10]
                try:
                    answer = await self.client.change_message_visibility_batch(QueueUrl=self.url, Entries=[
                        {"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": self.heartbeat_visibility}
                        for n, r in enumerate(chunk)])
                except Exception as exc:
                    self.log.warn("sqs: cannot extend the visibility of running jobs (they may run twice)",
                                  pipeline=self.pipe.name, error=describe(exc))
                    continue
                for failure in answer.get("Failed") or []:
                    self.log.debug("sqs: visibility not extended", pipeline=self.pipe.name,
                                   code=failure.get("Code"), message=failure.get("Message"))

    def counts(self) -> dict[str, int]:
        return {**self._queue_counts, "reserved": len(self.in_flight)}

    def state(self) -> dict[str, Any]:
        return {**self.counts(), "ready": self.running and not self._receive_error, "error": self.error}

    # -- receive -------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wakeup.set()

    async def _idle(self, seconds: float) -> None:
        self._wakeup.clear()
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            pass

    async def _receive_forever(self) -> None:
        backoff, failures = BACKOFF_MIN, 0
        while not self.closed:
            room = self.limit - len(self.in_flight)
            if not self.running or room <= 0 or not self.sink.has_room():
                await self._idle(1.0)
                continue
            params: dict[str, Any] = {"QueueUrl": self.url, "MaxNumberOfMessages": min(self.batch, room),
                                      "WaitTimeSeconds": self.wait, "MessageAttributeNames": ["All"],
                                      "MessageSystemAttributeNames": ["All"]}
            if self.visibility:
                params["VisibilityTimeout"] = self.visibility
            try:
                answer = await self.client.receive_message(**params)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                why = describe(exc)
                self._set_error(receive=f"sqs at {self.where}: {why}")
                self.log.error("sqs receive failed, retrying", pipeline=self.pipe.name, queue=self.queue,
                               error=why, attempt=failures, retry_in=round(backoff, 2))
                if error_code(exc) in NON_EXISTENT and not self.skip_declare:
                    await self._recreate()
                await self._idle_closed(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            if failures:
                self.log.info("sqs receiving again", pipeline=self.pipe.name, queue=self.queue, failures=failures)
                failures, backoff = 0, BACKOFF_MIN
            self._set_error(receive="")
            messages = answer.get("Messages") or []
            for msg in messages:
                self._offer(msg)
            if not messages and not self.wait:
                await self._idle(EMPTY_POLL)

    async def _idle_closed(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            await self._idle(deadline - time.monotonic())

    async def _recreate(self) -> None:
        try:
            await self._declare()
            self.log.warn("sqs queue was gone: created again", pipeline=self.pipe.name, queue=self.queue)
        except Exception as exc:
            self.log.error("sqs: cannot create the queue again", pipeline=self.pipe.name, queue=self.queue,
                           error=describe(exc))

    def _offer(self, msg: dict[str, Any]) -> None:
        job, handle = decode_message(msg, self.pipe.name, self.pipe.priority, self.retain)
        delivery = Delivery(job, self, handle=handle)
        if not self.running or self.closed:  # paused while the receive was out: visible again at once
            self._spawn(self._change_visibility(handle.receipt, 0, job))
            return
        self.in_flight[handle.receipt] = delivery
        self.sink.offer(delivery)

    # -- deliveries ------------------------------------------------------------------------------

    def ack(self, delivery: Delivery) -> None:
        handle: SqsHandle = delivery.handle
        self.in_flight.pop(handle.receipt, None)
        self.acked += 1
        self._spawn(self._delete(handle.receipt, delivery.job))
        self.wake()

    def retry(self, delivery: Delivery, delay: float) -> None:
        handle: SqsHandle = delivery.handle
        self.in_flight.pop(handle.receipt, None)
        self.retried += 1
        job = delivery.job
        if self.retain and job.attempts > handle.attempts:
            seconds = self.error_visibility or min(math.ceil(delay), MAX_DELAY)
            if seconds:
                self._spawn(self._change_visibility(handle.receipt, seconds, job))
            # else: nothing to do, it comes back when its visibility timeout ends (RoadRunner's behaviour)
        else:
            self._spawn(self._resend(delivery, delay))
        self.wake()

    def release(self, delivery: Delivery) -> None:
        handle: SqsHandle = delivery.handle
        self.in_flight.pop(handle.receipt, None)
        self._spawn(self._change_visibility(handle.receipt, 0, delivery.job))
        self.wake()

    async def _delete(self, receipt: str, job: Job) -> bool:
        pause = 0.5
        for attempt in range(1, DELETE_TRIES + 1):
            try:
                await self.client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)
                return True
            except Exception as exc:
                if attempt == DELETE_TRIES or self.client is None:
                    self.log.warn("sqs: cannot delete a finished job; it comes back after its visibility timeout "
                                  "and runs again", pipeline=self.pipe.name, id=job.id, error=describe(exc))
                    return False
                await asyncio.sleep(pause)
                pause *= 2
        return False

    async def _resend(self, delivery: Delivery, delay: float) -> None:
        job: Job = delivery.job
        handle: SqsHandle = delivery.handle
        seconds = 0 if self.fifo else min(math.ceil(delay), MAX_DELAY)
        try:
            await self.client.send_message(QueueUrl=self.url,
                                           **self._entry(job, seconds, str(uuid.uuid4()), handle.system_keys))
        except Exception as exc:
            # the original stays: it comes back after its visibility timeout, attempt count not updated
            self.log.warn("sqs: cannot send the retried job's copy; the original will be received again",
                          pipeline=self.pipe.name, id=job.id, error=describe(exc))
            return
        await self._delete(handle.receipt, job)

    async def _change_visibility(self, receipt: str, seconds: int, job: Job) -> None:
        try:
            await self.client.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt,
                                                        VisibilityTimeout=seconds)
        except Exception as exc:
            self.log.warn("sqs: cannot change a job's visibility; it comes back after its visibility timeout",
                          pipeline=self.pipe.name, id=job.id, error=describe(exc))


DRIVER = SqsDriver
