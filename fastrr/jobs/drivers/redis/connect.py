"""The redis jobs driver's two clients, built from the kv redis storage's settings.

The connection keys are the kv plugin's (fastrr/kv/drivers/redis.py), so the
clients are made from a RedisKv's parsed settings (address, mode, timeouts,
retries, AUTH, TLS) rather than a second reading of them. Two clients: one for
commands, one for the blocking XREADGROUP, which holds its connection for up to
block_timeout and so gets a socket timeout above it.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from fastrr.jobs.drivers.base import DriverError
from fastrr.kv.drivers.base import KvError
from fastrr.kv.drivers.redis import RedisKv

BLOCK_SLACK = 5.0  # seconds the blocking client's socket timeout is above block_timeout


def make_clients(conn: RedisKv, block_timeout: float) -> tuple[Any, Any]:
    """(commands client, blocking-read client); DriverError for what cannot work."""
    if conn.mode == "cluster":
        raise DriverError(f"{conn.where}: Redis Cluster is not supported by the redis jobs driver "
                          "(give one address, or master_name for Sentinel)")
    try:
        kwargs = conn.conn_kwargs()
    except KvError as exc:  # a TLS file that is not there
        raise DriverError(str(exc)) from None
    blocking = {**kwargs, "socket_timeout": max(kwargs["socket_timeout"], block_timeout + BLOCK_SLACK)}
    opts = conn.opts
    db = opts["db"]
    ssl: dict[str, Any] = {"ssl": True} if opts["tls"] else {}
    if conn.mode == "sentinel":
        sentinel_kwargs = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout", "retry")}
        sentinel_kwargs["password"] = opts["sentinel_password"] or None
        commands = Sentinel(conn.addrs, sentinel_kwargs=sentinel_kwargs, **kwargs, **ssl)
        reads = Sentinel(conn.addrs, sentinel_kwargs=sentinel_kwargs, **blocking, **ssl)
        return commands.master_for(opts["master_name"], db=db), reads.master_for(opts["master_name"], db=db)
    host, port = conn.addrs[0]
    return (Redis(host=host, port=port, db=db, **kwargs, **ssl),
            Redis(host=host, port=port, db=db, **blocking, **ssl))
