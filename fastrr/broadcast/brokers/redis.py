"""The redis broker: Redis pub/sub between every fastrr instance on the same Redis.

Two connections per broker:
- publish: redis.asyncio (`PUBLISH <prefix><topic> <envelope>`); a failure is a
  BroadcastError, which the RPC answers as an error: nothing is dropped silently.
- subscribe: one connection of our own (asyncio.Protocol + hiredis, so the SUBSCRIBE and
  UNSUBSCRIBE commands are written the moment the hub asks, with no lock against the read
  that is always pending), subscribed to exactly the topics that have local subscribers:
  SUBSCRIBE on the first (hub `watch`), UNSUBSCRIBE `unsubscribe_delay` after the last left
  (hub `unwatch`), so an SSE client that reconnects within it resumes with no gap.
  A message that comes back is handed to the hub, which delivers it here.

The envelope (the bytes PUBLISHed; documented for other programs that publish or listen):

    FE FB 42 31 | n: 1 byte | id: n ASCII bytes | payload (the rest, as published)

FE FB never starts UTF-8 text, so a message another program PUBLISHes without it (plain
text, JSON) is delivered too: its payload is the whole message, and the receiving
instance gives it an id of its own (then instances disagree on that message's id).

Redis lost (restart, network): one warning line, then reconnects with backoff 0.2 s
doubling to 5 s, and on success SUBSCRIBEs every current topic again and logs one line.
Pub/sub has no replay: messages published by OTHER instances while this one was
disconnected are lost for its subscribers, and the history of every topic is dropped
(a Last-Event-ID resume then answers "too far behind" instead of skipping them).
Publishes from this instance while Redis is down fail with an RPC error naming Redis.
The subscriber connection sends PING when it has heard nothing for PING_EVERY seconds and
gives up on it when the answer takes more than read_timeout (a silent network drop).

Pub/sub channels are not per database: `db` does not separate brokers, `prefix` does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from fastrr.broadcast.hub import BroadcastError, Broker, Message
from fastrr.kv.drivers.redis import split_addr

MAGIC = b"\xfe\xfbB1"
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 5.0
PING_EVERY = 5.0
SUBSCRIBE_CHUNK = 1000  # channels per SUBSCRIBE command on (re)connect


def encode(msg: Message) -> bytes:
    ident = msg.id.encode("ascii")
    return b"".join((MAGIC, bytes((len(ident),)), ident, msg.payload))


def decode(data: bytes) -> tuple[str | None, bytes]:
    """(id, payload); id None for a message without the envelope."""
    if data[:4] == MAGIC and len(data) >= 5:
        n = data[4]
        if len(data) >= 5 + n:
            try:
                return data[5:5 + n].decode("ascii"), data[5 + n:]
            except UnicodeDecodeError:
                pass
    return None, data


class _Subscription(asyncio.Protocol):
    """The subscribe connection. Replies before `ready` answer the handshake (AUTH, PING) in
    order; after it every reply is a push: message, subscribe/unsubscribe counts, pong."""

    def __init__(self, broker: RedisBroker):
        self.broker = broker
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.handshake: list[asyncio.Future[Any]] = []
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.heard = time.monotonic()
        self.pinged = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, *args: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(hiredis.pack_command(args))

    def data_received(self, data: bytes) -> None:
        self.heard = time.monotonic()
        self.pinged = 0.0
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                if self.handshake:
                    future = self.handshake.pop(0)
                    if not future.done():
                        future.set_result(reply)
                elif isinstance(reply, hiredis.ReplyError):
                    self.fail(f"error reply: {reply}")
                    return
                elif isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                    self.broker.received(reply[1], reply[2])
        except hiredis.ProtocolError as exc:
            self.fail(f"protocol error: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        why = f"connection lost: {exc}" if exc else "connection closed by the server"
        for future in self.handshake:
            if not future.done():
                future.set_exception(ConnectionError(why))
        self.handshake.clear()
        if not self.closed.done():
            self.closed.set_result(why)

    def fail(self, why: str) -> None:
        if not self.closed.done():
            self.closed.set_result(why)
        if self.transport is not None:
            self.transport.abort()

    async def ask(self, *args: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.handshake.append(future)
        self.send(*args)
        return await future


class RedisBroker(Broker):
    kind = "redis"

    def __init__(self, name: str, options: dict[str, Any], log: Any, workdir: str = "."):
        self.name = name
        self.opts = options
        self.log = log
        self.host, self.port = split_addr("addrs", options["addrs"][0])
        self.where = f"redis {self.host}:{self.port}"
        self.prefix = options["prefix"]
        self._pfx = self.prefix.encode()
        self.delay = options["unsubscribe_delay"]
        self.connect_timeout = options["dial_timeout"] or 5.0
        self.read_timeout = max(options["read_timeout"] or 3.0, options["write_timeout"] or 0.0)
        self.workdir = workdir
        self.pub: Redis | None = None
        self.sub: _Subscription | None = None  # set while connected and subscribed
        self.lost: str | None = None  # why, while disconnected after having been connected (or at start)
        self._task: asyncio.Task[None] | None = None
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        self._pinger: asyncio.TimerHandle | None = None

    # -- lifecycle

    def _tls_paths(self) -> dict[str, str]:
        """The tls files (relative to the working directory), checked to exist."""
        paths = {k: v if os.path.isabs(v) else os.path.join(self.workdir, v) for k, v in self.opts["tls"].items()
                 if k in ("cert", "key", "root_ca")}
        for key, path in paths.items():
            if not os.path.isfile(path):
                raise BroadcastError(f"tls.{key}: no such file {path}")
        return paths

    async def start(self) -> None:
        o = self.opts
        tls: ssl.SSLContext | None = None
        kwargs: dict[str, Any] = {}
        if o["tls"]:
            paths = self._tls_paths()
            # The server's certificate is verified, host name included (the kv driver's rule).
            tls = ssl.create_default_context(cafile=paths.get("root_ca"))
            if "cert" in paths:
                tls.load_cert_chain(paths["cert"], paths.get("key"))
            kwargs = {"ssl": True, "ssl_ca_certs": paths.get("root_ca"), "ssl_certfile": paths.get("cert"),
                      "ssl_keyfile": paths.get("key"), "ssl_cert_reqs": "required"}
        # One retry: after a Redis restart the pooled connection is dead, the retry dials anew.
        self.pub = Redis(host=self.host, port=self.port, db=o["db"], username=o["username"] or None,
                         password=o["password"] or None, socket_timeout=self.read_timeout,
                         socket_connect_timeout=self.connect_timeout, retry=Retry(NoBackoff(), 1), **kwargs)
        try:
            await self._connect(tls)
        except BroadcastError:
            raise
        except (TimeoutError, OSError, ConnectionError) as exc:
            self.lost = str(exc) or type(exc).__name__
            self.log.warn("broadcast redis not reachable; publishes fail until it is, reconnecting",
                          broker=self.name, redis=f"{self.host}:{self.port}", error=self.lost)
        self._task = asyncio.get_running_loop().create_task(self._run(tls))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        for timer in self._lingering.values():
            timer.cancel()
        self._lingering.clear()
        if self._pinger is not None:
            self._pinger.cancel()
        if self.sub is not None and self.sub.transport is not None:
            self.sub.transport.close()
        self.sub = None
        pub, self.pub = self.pub, None
        if pub is not None:
            try:
                await pub.aclose()
            except (RedisError, OSError):
                pass

    async def _connect(self, tls: ssl.SSLContext | None) -> None:
        """Dial, authenticate, SUBSCRIBE every current topic; then `self.sub` is live."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, sub = await loop.create_connection(lambda: _Subscription(self), self.host, self.port, ssl=tls)
        try:
            o = self.opts
            async with asyncio.timeout(self.read_timeout):
                if o["password"]:
                    auth = ("AUTH", o["username"], o["password"]) if o["username"] else ("AUTH", o["password"])
                    answer = await sub.ask(*auth)
                    if isinstance(answer, hiredis.ReplyError):
                        raise BroadcastError(f"{self.where}: AUTH failed: {answer}")
                answer = await sub.ask("PING")
                if isinstance(answer, hiredis.ReplyError):
                    if str(answer).startswith(("NOAUTH", "WRONGPASS")):
                        raise BroadcastError(f"{self.where}: {answer} (set password / username)")
                    raise ConnectionError(f"PING answered {answer}")  # LOADING, ...: try again later
        except BaseException:
            if sub.transport is not None:
                sub.transport.abort()
            raise
        topics = [self._pfx + t.encode() for t in self.hub.topics()]
        for i in range(0, len(topics), SUBSCRIBE_CHUNK):
            sub.send("SUBSCRIBE", *topics[i:i + SUBSCRIBE_CHUNK])
        self.sub = sub
        self._ping_later()

    async def _run(self, tls: ssl.SSLContext | None) -> None:
        backoff = BACKOFF_FIRST
        while True:
            sub = self.sub
            if sub is not None:
                since = time.monotonic()
                why = await sub.closed
                self.sub = None
                if sub.transport is not None:
                    sub.transport.abort()
                self._disconnected(why)
                if time.monotonic() - since > BACKOFF_MAX:
                    backoff = BACKOFF_FIRST  # a connection that dies at once (an ACL refusing a
                    # SUBSCRIBE, ...) keeps backing off instead of redialling 5 times a second
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            try:
                await self._connect(tls)
            except (TimeoutError, OSError, ConnectionError, BroadcastError) as exc:
                self.lost = self.lost or str(exc) or type(exc).__name__
                continue
            if self.lost is not None:
                self.log.info("broadcast redis connection back; topics subscribed again", broker=self.name,
                              redis=f"{self.host}:{self.port}", topics=len(self.hub.topics()))
                self.lost = None

    def _disconnected(self, why: str) -> None:
        self.lost = why
        # Messages published elsewhere meanwhile are gone: no history with a hole in it.
        self.hub.forget()
        for timer in self._lingering.values():
            timer.cancel()
        self._lingering.clear()
        self.log.warn("broadcast redis connection lost; reconnecting (messages published by other instances "
                      "until it is back are not delivered here)", broker=self.name,
                      redis=f"{self.host}:{self.port}", error=why)

    def _ping_later(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        self._pinger = asyncio.get_running_loop().call_later(PING_EVERY, self._ping)

    def _ping(self) -> None:
        sub = self.sub
        self._pinger = None
        if sub is None:
            return
        now = time.monotonic()
        if sub.pinged and now - sub.pinged > self.read_timeout:
            sub.fail(f"no answer to PING within {self.read_timeout:g} s")
            return
        if not sub.pinged and now - sub.heard >= PING_EVERY:
            sub.pinged = now
            sub.send("PING")
        self._pinger = asyncio.get_running_loop().call_later(
            min(PING_EVERY, self.read_timeout) if sub.pinged else PING_EVERY, self._ping)

    # -- the hub's calls

    def watch(self, topic: str) -> None:
        timer = self._lingering.pop(topic, None)
        if timer is not None:
            timer.cancel()  # still SUBSCRIBEd: nothing missed
            return
        if self.sub is not None:
            self.sub.send("SUBSCRIBE", self._pfx + topic.encode())
        # not connected: _connect subscribes every current topic

    def unwatch(self, topic: str) -> None:
        if self.sub is None:
            return
        if self.delay > 0:
            self._lingering[topic] = asyncio.get_running_loop().call_later(self.delay, self._drop, topic)
        else:
            self._drop(topic)

    def _drop(self, topic: str) -> None:
        self._lingering.pop(topic, None)
        if self.hub.subscribers(topic):
            return
        if self.sub is not None:
            self.sub.send("UNSUBSCRIBE", self._pfx + topic.encode())
        self.hub.forget(topic)  # not listening any more: its history would get a hole

    def received(self, channel: bytes, data: bytes) -> None:
        if not channel.startswith(self._pfx):
            return
        try:
            topic = channel[len(self._pfx):].decode()
        except UnicodeDecodeError:
            return
        ident, payload = decode(data)
        self.hub.dispatch(Message(topic, payload, ident or self.hub.new_id()))

    async def publish(self, msg: Message) -> None:
        if self.pub is None:
            raise BroadcastError(f"{self.where}: broker not started")
        try:
            await self.pub.publish(self._pfx + msg.topic.encode(), encode(msg))
        except AuthenticationError as exc:
            raise BroadcastError(f"{self.where}: authentication failed: {exc}") from None
        except ResponseError as exc:
            raise BroadcastError(f"{self.where}: PUBLISH failed: {exc}") from None
        except (RedisError, OSError) as exc:
            raise BroadcastError(f"{self.where} is unreachable, message not published: "
                                 f"{exc or type(exc).__name__}") from None

    def status(self) -> tuple[bool, str]:
        return (False, f"{self.where}: {self.lost}") if self.lost else (True, "")
