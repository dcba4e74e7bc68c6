"""The bundled plugins, in start order (stopped in reverse): nothing else.

rpc first, since workers may call it while they boot; status next, so its
probes answer "not ready" while workers boot and keep answering while the
others drain at a stop; then the plugins without
workers that workers call (kv, broadcast, lock); websockets after broadcast
(its hubs) and before http, whose fronts hand it the upgrades (and whose stop
sends its sockets 1001 first); service (its commands outlive the workers
at a stop); jobs before http, so
HTTP handlers can push jobs from their first request, and so at a graceful
stop the HTTP front drains (its handlers still pushing) before the consumers
drain and the pipelines close; grpc between jobs and http for the same
reasons (its handlers push jobs too); rpc last, for the CLI to watch the stop.
"""

from __future__ import annotations

from fastrr.applogger.plugin import AppLoggerPlugin
from fastrr.broadcast.plugin import BroadcastPlugin
from fastrr.grpc.plugin import GrpcPlugin
from fastrr.http.plugin import HttpPlugin
from fastrr.jobs.plugin import JobsPlugin
from fastrr.kv.plugin import KvPlugin
from fastrr.lock.plugin import LockPlugin
from fastrr.metrics.plugin import MetricsPlugin
from fastrr.reload.plugin import ReloadPlugin
from fastrr.rpc.plugin import RpcPlugin
from fastrr.server.plugin import Plugin
from fastrr.service.plugin import ServicePlugin
from fastrr.status.plugin import StatusPlugin
from fastrr.websockets.plugin import WebsocketsPlugin

PLUGINS: list[type[Plugin]] = [RpcPlugin, StatusPlugin,
                               MetricsPlugin, KvPlugin, BroadcastPlugin, WebsocketsPlugin,
                               LockPlugin, AppLoggerPlugin, ServicePlugin, JobsPlugin,
                               GrpcPlugin, HttpPlugin, ReloadPlugin]
