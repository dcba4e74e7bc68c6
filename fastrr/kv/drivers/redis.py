"""The redis kv driver (RoadRunner's `driver: redis`), on redis-py's asyncio client.

Options are RoadRunner's (roadrunner-server/redis kv/config.go), with go-redis's
defaults where RoadRunner leaves a zero:

    addrs              ["127.0.0.1:6379"]; "host:port" ("[v6]:port"), the port defaults to 6379
    db                 0 (not in cluster mode: a cluster has db 0 only)
    username, password AUTH (ACL user, or password only)
    master_name        set: Sentinel mode, `addrs` are the sentinels (redis.asyncio.sentinel)
    sentinel_password  the sentinels' own password
    max_retries        3 (0 = the default; -1 = no retries): retries after a connection
                       error or timeout, with exponential backoff and jitter between
    min_retry_backoff  8ms   \\ the backoff's first step and its cap
    max_retry_backoff  512ms /
    dial_timeout       5s (connect)
    read_timeout       3s \\ redis-py has one socket timeout: the larger of the two is used
    write_timeout      = read_timeout /
    pool_size          10 per CPU: at most this many connections (per node in a cluster)
    pool_timeout       read_timeout + 1s: how long a call waits for a free connection
                       (single node only; sentinel and cluster pools fail at once when full)
    read_only          cluster only: reads go to replicas (random replica)
    route_randomly     cluster only: reads go to a random node, primary or replica
    route_by_latency   cluster only; redis-py cannot measure latency: taken as read_only
    tls                {cert, key, root_ca}: TLS (root_ca: the CA file, else the system's;
                       cert + key: a client certificate); paths relative to the working dir;
                       with Sentinel, to the Redis nodes only (the sentinels are asked in clear)

Modes, as go-redis's UniversalClient picks them: `master_name` set → Sentinel;
else several `addrs` → Redis Cluster (redis.asyncio.cluster.RedisCluster);
else one node.

Accepted but ignored (redis-py has nothing like them; a warning is logged once
at open when one is set): min_idle_conns, max_conn_age, idle_timeout,
idle_check_freq, tls.client_auth_type, plus the mode-specific ones above
(read_only/route_* outside a cluster, db in a cluster, pool_timeout outside
a single node, sentinel_password without master_name).

Semantics: values are stored as they are (opaque bytes, no encoding). Set
sends SET key value PX <ms until the expiry> (several items in one MULTI/EXEC;
an item whose expiry is already past is deleted in the same transaction);
MExpire sends PEXPIREAT with the absolute expiry (a past one deletes the
key, so this trusts the Redis host's clock); TTL reads PTTL and answers
now + ttl (None for a key without expiry; missing keys left out); Has is a
pipeline of EXISTS; MGet one MGET (a cluster splits it by slot, then it is
not atomic); Delete one DEL. **Clear is FLUSHDB, as RoadRunner's: it
empties the whole Redis database `db`, not only keys this storage wrote** —
give a storage a db of its own. In a cluster, pipelines are not transactions.

Every Redis error (connection refused or lost, timeout, an error reply)
becomes KvError("kv storage <name> (redis <addr>): <redis-py's text>").
redis-py drops a broken connection and dials again on the next call, so
calls fail while Redis is down and work again once it is back.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.cluster import LoadBalancingStrategy
from redis.exceptions import RedisError

from fastrr.config.units import ConfigError, parse_bool, parse_duration, parse_int, parse_str, parse_str_list
from fastrr.kv.drivers.base import KvDriver, KvError
from fastrr.kv.drivers.resp import RespClient, RespConnectionLost, RespError

DEFAULT_PORT = 6379
TLS_KEYS = ("cert", "key", "root_ca", "client_auth_type")
_PIPELINE_ERROR = re.compile(r"Command # (\d+) \(.*?\) of pipeline caused error: (.*)", re.DOTALL)
IGNORED = ("min_idle_conns", "max_conn_age", "idle_timeout", "idle_check_freq")


def split_addr(path: str, addr: str) -> tuple[str, int]:
    """"host:port", "[v6]:port" or "host" → (host, port)."""
    text = addr.strip()
    host, port = text, str(DEFAULT_PORT)
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1:]
        if end < 0 or (rest and not rest.startswith(":")):
            host = ""
        elif rest:
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, f"expected an address like 127.0.0.1:6379, got {addr!r}")
    return host, int(port)


def parse_addrs(path: str, value: Any) -> list[str]:
    addrs = parse_str_list(path, value)
    if not addrs:
        raise ConfigError(path, "expected at least one address like 127.0.0.1:6379")
    for i, addr in enumerate(addrs):
        split_addr(f"{path}[{i}]", addr)
    return addrs


def parse_retries(path: str, value: Any) -> int:
    return parse_int(path, value, minimum=-1)


def parse_tls(path: str, value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping with cert, key and root_ca, got {value!r}")
    for key in value:
        if key not in TLS_KEYS:
            raise ConfigError(f"{path}.{key}", f"unknown TLS option (known: {', '.join(TLS_KEYS)})")
    return {k: parse_str(f"{path}.{k}", v) for k, v in value.items() if v not in (None, "")}


class RedisKv(KvDriver):
    name = "redis"
    OPTIONS = {
        "addrs": (parse_addrs, ["127.0.0.1:6379"]),
        "db": (parse_int, 0),
        "username": (parse_str, ""),
        "password": (parse_str, ""),
        "master_name": (parse_str, ""),
        "sentinel_password": (parse_str, ""),
        "route_by_latency": (parse_bool, False),
        "route_randomly": (parse_bool, False),
        "max_retries": (parse_retries, 0),
        "dial_timeout": (parse_duration, 0.0),
        "min_retry_backoff": (parse_duration, 0.0),
        "max_retry_backoff": (parse_duration, 0.0),
        "pool_size": (parse_int, 0),
        "min_idle_conns": (parse_int, 0),
        "max_conn_age": (parse_duration, 0.0),
        "read_timeout": (parse_duration, 0.0),
        "write_timeout": (parse_duration, 0.0),
        "pool_timeout": (parse_duration, 0.0),
        "idle_timeout": (parse_duration, 0.0),
        "idle_check_freq": (parse_duration, 0.0),
        "read_only": (parse_bool, False),
        "tls": (parse_tls, {}),
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        opts = {key: default for key, (_, default) in self.OPTIONS.items()}
        opts.update(self.options)
        self.opts = opts
        self.addrs = [split_addr("addrs", a) for a in opts["addrs"]]
        self.mode = "sentinel" if opts["master_name"] else "cluster" if len(self.addrs) > 1 else "single"
        joined = ",".join(opts["addrs"])
        self.where = {"single": f"redis {joined}", "cluster": f"redis cluster {joined}",
                      "sentinel": f"redis sentinel {opts['master_name']} via {joined}"}[self.mode]
        self._slots: asyncio.Semaphore | None = None
        self._slot_wait = 0.0
        self._pool_size = 0
        self.client: Any = None
        self._reads: RespClient | None = None  # single node without TLS: MGET/EXISTS pipelined (resp.py)

    def ignored(self) -> list[str]:
        o = self.opts
        out = [key for key in IGNORED if o[key]]
        if o["tls"].get("client_auth_type"):
            out.append("tls.client_auth_type")
        if self.mode != "cluster":
            out += [key for key in ("read_only", "route_randomly", "route_by_latency") if o[key]]
        else:
            out += [key for key in ("db",) if o[key]]
            if o["route_by_latency"]:
                out.append("route_by_latency (replicas picked at random instead)")
        if self.mode != "single" and o["pool_timeout"]:
            out.append("pool_timeout")
        if self.mode != "sentinel" and o["sentinel_password"]:
            out.append("sentinel_password")
        return out

    def conn_kwargs(self) -> dict[str, Any]:
        o = self.opts
        read = o["read_timeout"] or 3.0
        retries = {0: 3, -1: 0}.get(o["max_retries"], o["max_retries"])
        backoff = ExponentialWithJitterBackoff(cap=o["max_retry_backoff"] or 0.512,
                                               base=o["min_retry_backoff"] or 0.008) if retries else NoBackoff()
        kwargs: dict[str, Any] = {
            "username": o["username"] or None,
            "password": o["password"] or None,
            "socket_timeout": max(read, o["write_timeout"] or read),
            "socket_connect_timeout": o["dial_timeout"] or 5.0,
            "retry": Retry(backoff, retries),
        }
        tls = o["tls"]
        if tls:
            for key in ("cert", "key", "root_ca"):
                if key in tls and not os.path.isabs(tls[key]):
                    tls = {**tls, key: os.path.join(self.workdir, tls[key])}
                if key in tls and not os.path.isfile(tls[key]):
                    raise KvError(f"kv storage {self.storage}: tls.{key}: no such file {tls[key]}")
            kwargs.update(ssl_certfile=tls.get("cert"), ssl_keyfile=tls.get("key"),
                          ssl_ca_certs=tls.get("root_ca"), ssl_cert_reqs="required")
        return kwargs

    async def open(self) -> None:
        o = self.opts
        kwargs = self.conn_kwargs()
        pool_size = o["pool_size"] or 10 * (os.cpu_count() or 1)
        if self.mode == "cluster":
            strategy = (LoadBalancingStrategy.RANDOM if o["route_randomly"] else
                        LoadBalancingStrategy.RANDOM_REPLICA if o["read_only"] or o["route_by_latency"] else None)
            self.client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in self.addrs],
                                       max_connections=pool_size, load_balancing_strategy=strategy,
                                       ssl=bool(o["tls"]), **kwargs)
        elif self.mode == "sentinel":
            sentinel_kwargs = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout", "retry")}
            sentinel_kwargs["password"] = o["sentinel_password"] or None
            if o["tls"]:
                kwargs["ssl"] = True
            sentinel = Sentinel(self.addrs, sentinel_kwargs=sentinel_kwargs, **kwargs)
            self.client = sentinel.master_for(o["master_name"], db=o["db"], max_connections=pool_size)
        else:
            host, port = self.addrs[0]
            if o["tls"]:
                kwargs["connection_class"] = SSLConnection
            else:
                kwargs["connection_class"] = Connection
            # A plain pool behind our own semaphore: BlockingConnectionPool waits for a free
            # connection with asyncio.wait_for, a Task and a timer on every command even when
            # connections are free (most of fastrr's CPU per kv call). The semaphore costs
            # nothing until all pool_size connections are busy; then pool_timeout bounds the wait.
            pool = ConnectionPool(host=host, port=port, db=o["db"], max_connections=pool_size, **kwargs)
            self._slots = asyncio.Semaphore(pool_size)
            self._pool_size = pool_size
            self._slot_wait = o["pool_timeout"] or (o["read_timeout"] or 3.0) + 1.0
            self.client = Redis(connection_pool=pool)
            if not o["tls"]:
                self._reads = RespClient(host, port, db=o["db"], username=o["username"] or None,
                                         password=o["password"] or None, connect_timeout=o["dial_timeout"] or 5.0,
                                         read_timeout=kwargs["socket_timeout"])
        ignored = self.ignored()
        if ignored:
            self.log.warn("redis kv options not supported by redis-py, ignored", storage=self.storage,
                          options=", ".join(ignored))
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            self.log.warn("redis kv storage not reachable yet; calls fail until it is", storage=self.storage,
                          error=self._error(exc))

    async def close(self) -> None:
        if self._reads is not None:
            self._reads.close()
            self._reads = None
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.aclose()
            except (RedisError, OSError):
                pass

    def _error(self, exc: BaseException | str) -> str:
        return f"kv storage {self.storage} ({self.where}): {exc or type(exc).__name__}"

    @property
    def _client(self) -> Any:
        if self.client is None:
            raise KvError(f"kv storage {self.storage} ({self.where}): not open")
        return self.client

    async def _acquire(self) -> None:
        slots = self._slots
        if slots is None:
            return
        if not slots.locked():
            await slots.acquire()  # returns at once: no wait, no timer
            return
        try:
            async with asyncio.timeout(self._slot_wait):
                await slots.acquire()
        except TimeoutError:
            raise KvError(self._error(f"all {self._pool_size} connections stayed busy for "
                                      f"{self._slot_wait:g} s (pool_size, pool_timeout)")) from None

    def _release(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _run(self, coro: Any) -> Any:
        try:
            await self._acquire()
        except BaseException:
            coro.close()
            raise
        try:
            return await coro
        except (RedisError, OSError) as exc:
            raise KvError(self._error(exc)) from None
        finally:
            self._release()

    async def _pipelined(self, commands: list[tuple[Any, ...]], transaction: bool = False) -> list[Any]:
        if len(commands) == 1 and not transaction:
            return [await self._run(self._client.execute_command(*commands[0]))]
        pipe = self._client.pipeline(transaction=transaction and self.mode != "cluster")
        for command in commands:
            pipe.execute_command(*command)
        await self._acquire()
        try:
            return await pipe.execute()  # type: ignore[no-any-return]
        except (RedisError, OSError) as exc:
            # redis-py's "Command # 3 (SET key value...) of pipeline caused error: ..." quotes
            # the value: name the command and key instead.
            m = _PIPELINE_ERROR.match(str(exc))
            if m and 0 < int(m[1]) <= len(commands):
                command = commands[int(m[1]) - 1]
                raise KvError(self._error(f"{command[0]} {command[1]}: {m[2]}")) from None
            raise KvError(self._error(exc)) from None
        finally:
            self._release()

    async def _read(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Read-only commands on the pipelined connection; sent once more if the connection
        dropped under them (Redis restarted since the last call), as redis-py retries."""
        reads = self._reads
        assert reads is not None
        for attempt in (1, 2):
            try:
                if len(commands) == 1:
                    return [await reads.call(*commands[0])]
                return await reads.pipeline(commands)
            except RespConnectionLost as exc:
                if attempt == 2:
                    raise KvError(self._error(str(exc))) from None
            except RespError as exc:
                raise KvError(self._error(str(exc))) from None
        raise AssertionError("unreachable")

    async def has(self, keys: list[str]) -> list[str]:
        if self._reads is not None and keys:
            found = await self._read([("EXISTS", k) for k in keys])
            return [k for k, n in zip(keys, found, strict=True) if n]
        found = await self._pipelined([("EXISTS", k) for k in keys]) if keys else []
        return [k for k, n in zip(keys, found, strict=True) if n]

    async def set(self, items: list[tuple[str, bytes, float | None]]) -> None:
        if not items:
            return
        now = time.time()
        commands: list[tuple[Any, ...]] = []
        for key, value, expiry in items:
            if expiry is None:
                commands.append(("SET", key, value))
            elif expiry <= now:
                commands.append(("DEL", key))
            else:
                commands.append(("SET", key, value, "PX", max(1, math.ceil((expiry - now) * 1000))))
        await self._pipelined(commands, transaction=len(commands) > 1)

    async def mget(self, keys: list[str]) -> list[tuple[str, bytes]]:
        if not keys:
            return []
        if self._reads is not None:
            values = (await self._read([("MGET", *keys)]))[0]
            return [(k, v) for k, v in zip(keys, values, strict=True) if v is not None]
        client = self._client
        values = await self._run(client.mget_nonatomic(keys) if self.mode == "cluster" else client.mget(keys))
        return [(k, v) for k, v in zip(keys, values, strict=True) if v is not None]

    async def mexpire(self, items: list[tuple[str, float]]) -> None:
        if items:
            await self._pipelined([("PEXPIREAT", key, math.ceil(expiry * 1000)) for key, expiry in items])

    async def ttl(self, keys: list[str]) -> list[tuple[str, float | None]]:
        if not keys:
            return []
        ttls = await self._pipelined([("PTTL", k) for k in keys])
        now = time.time()
        out: list[tuple[str, float | None]] = []
        for key, ms in zip(keys, ttls, strict=True):
            if ms == -1:
                out.append((key, None))
            elif ms >= 0:
                out.append((key, now + ms / 1000))
        return out

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await self._run(self._client.delete(*keys))

    async def clear(self) -> None:
        await self._run(self._client.flushdb())
