"""Many confirmed publishes written to the socket at once (a PushBatch of thousands of jobs).

aiormq's basic_publish takes the channel lock, marshals and queues one message at a time,
each with its own timeout scope and drain future: for a batch that is most of the
driver's CPU. `publish_many` does what basic_publish does for each message (a delivery
tag, a confirmation future, the message id the broker's basic.return is matched by) under
one lock, and queues all their frames as one write; the broker's confirms resolve the
futures exactly as for basic_publish. It uses the channel's attributes basic_publish uses,
so a client version without them gets the one-by-one path instead.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiormq.abc import AbstractChannel, ChannelFrame
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

Message = tuple[bytes, str, str, spec.Basic.Properties]  # body, exchange, routing key, properties
_NEEDS = ("lock", "delivery_tag", "confirmations", "message_id_delivery_tag", "write_queue", "max_content_size",
          "publisher_confirms", "number")


def supported(channel: AbstractChannel) -> bool:
    return all(hasattr(channel, name) for name in _NEEDS) and bool(channel.publisher_confirms)


def _bodies(body: bytes, size: int) -> list[ContentBody]:
    return [ContentBody(body[i:i + size]) for i in range(0, len(body), size)] if body else []


async def publish_many(channel: AbstractChannel, messages: list[Message], mandatory: bool = True
                       ) -> list[Any]:
    """Publish `messages`; per message, the broker's confirm (spec.Basic.Ack or Nack) or the
    exception (PublishError for a returned mandatory message, ChannelClosed, ...)."""
    if not supported(channel):
        return list(await asyncio.gather(*(channel.basic_publish(body, exchange=exchange, routing_key=key,
                                                                 properties=props, mandatory=mandatory)
                                           for body, exchange, key, props in messages),
                                         return_exceptions=True))
    ch: Any = channel
    futures: list[asyncio.Future[Any]] = []
    async with ch.lock:
        frames: list[Any] = []
        ids = ch.message_id_delivery_tag
        for body, exchange, key, props in messages:
            if not props.message_id:
                props.message_id = uuid.uuid4().hex
            ch.delivery_tag += 1
            tag = ch.delivery_tag
            confirmation = ch.create_future()
            ch.confirmations[tag] = confirmation
            ids[props.message_id] = tag
            confirmation.add_done_callback(lambda _, mid=props.message_id, t=tag: ids.pop(mid, None)
                                           if ids.get(mid) == t else None)
            frames.append(spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=mandatory))
            frames.append(ContentHeader(properties=props, body_size=len(body)))
            frames.extend(_bodies(body, ch.max_content_size))
            futures.append(confirmation)
        await ch.write_queue.put(ChannelFrame.marshall(frames=frames, channel_number=ch.number))
    return list(await asyncio.gather(*futures, return_exceptions=True))
