"""Delayed jobs on NATS (RoadRunner refuses them: "nats doesn't support delayed messages").

A delayed job (a push or a retry with a delay) is published to the
pipeline's delay subject in fastrr's stream `<stream>-fastrr-delayed`
(work-queue retention: a moved job is gone from it) with the wall-clock time
it is due in the `Fastrr-Due` header. The pipeline's delay consumer
(`<consumer>_delayed`, durable, no MaxAckPending) is read here: a job not
due yet is nak'ed with the time it has left (JetStream's NAK delay: the
broker keeps it, redelivers it then, and keeps it across a broker restart or
for another fastrr instance if this one dies); a due one is published to the
pipeline's subject and then acked here (a crash in between runs it twice,
never loses it). A stream of its own because a nak'ed message still counts
against its consumer's MaxAckPending: delayed jobs waiting in the pipeline's
consumer would stop it handing out due ones once `prefetch` of them waited.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from nats.errors import TimeoutError as NatsTimeoutError

from fastrr.jobs.drivers.nats import wire
from fastrr.jobs.drivers.nats.jetstream import describe

if TYPE_CHECKING:
    from fastrr.jobs.drivers.nats.driver import NatsDriver

FETCH_BATCH = 256  # delayed messages read per pull request
FETCH_WAIT = 5.0  # seconds a pull request of the delay consumer waits
DUE_SLACK = 0.02  # seconds: a job due this soon is moved now
MOVE_RETRY = 1.0  # seconds before a due job whose publish failed is tried again


async def move_due_jobs(driver: NatsDriver) -> None:
    """Runs while the pipeline is open (consumed or not: a due job belongs on its subject)."""
    while not driver.closing:
        sub = driver.delay_sub
        if sub is None or not driver.connected():
            await asyncio.sleep(1.0)
            continue
        try:
            msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_WAIT)
        except (NatsTimeoutError, TimeoutError):
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await driver.fetch_failed("delayed jobs", exc)
            continue
        now = time.time()
        due = []
        for msg in msgs:
            left = wire.due_time(msg.headers) - now
            if left > DUE_SLACK:
                await msg.nak(delay=left)
            else:
                due.append(msg)
        if due:
            await asyncio.gather(*(_move(driver, msg) for msg in due), return_exceptions=True)


async def _move(driver: NatsDriver, msg: Any) -> None:
    js = driver.js
    assert js is not None
    headers = {k: v for k, v in (msg.headers or {}).items() if k != wire.DUE_HEADER}
    try:
        await js.publish(driver.subject, msg.data, timeout=driver.publish_timeout, stream=driver.stream,
                         headers=headers)
    except Exception as exc:
        driver.log.warn("nats: a due job could not be moved to its subject yet, will retry",
                        pipeline=driver.pipe.name, error=describe(exc))
        await msg.nak(delay=MOVE_RETRY)
        return
    await msg.ack()
    driver.moved_due()
