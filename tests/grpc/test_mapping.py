"""The grpc plugin's mappings without a server: `grpc:` keys → grpcio channel
arguments, worker answers → status/metadata, and the worker's request context."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from fastrr import _core
from fastrr.config.section import Section
from fastrr.config.units import ConfigError
from fastrr.grpc.call import peer_address, read_answer, request_context
from fastrr.grpc.config import parse_grpc
from fastrr.grpc.server import bind_address, channel_options
from fastrr.grpc.status import AnyMessage, Status, from_worker_error
from fastrr.log import Logger, LogSink
from tests.grpc.conftest import PROTOS

LOG = Logger(LogSink("error"), "test")


def parse(**raw: Any) -> Any:
    warnings: list[str] = []
    cfg = parse_grpc(Section("grpc", {"listen": "127.0.0.1:9001", "proto": [str(PROTOS / "echo.proto")], **raw},
                             warnings), 2)
    return cfg, warnings


def test_defaults_are_roadrunners() -> None:
    cfg, warnings = parse()
    assert warnings == []
    opts = dict(channel_options(cfg))
    assert opts["grpc.max_receive_message_length"] == opts["grpc.max_send_message_length"] == 50 << 20
    assert opts["grpc.max_concurrent_streams"] == 10
    assert opts["grpc.keepalive_time_ms"] == 2 * 3600 * 1000
    assert opts["grpc.keepalive_timeout_ms"] == 20_000
    assert "grpc.max_connection_idle_ms" not in opts  # 0 = infinity: left to grpc core's default
    assert opts["grpc.so_reuseport"] == 0
    assert cfg.listen == "tcp://127.0.0.1:9001" and cfg.pool.num_workers == 2


def test_keys_map_to_channel_arguments() -> None:
    cfg, _ = parse(max_send_msg_size=3, max_recv_msg_size=4, max_connection_idle="1m", max_connection_age="2h",
                   max_connection_age_grace="5s", max_concurrent_streams=100, ping_time="30s", timeout="3s",
                   env={"app_env": "x"})
    opts = dict(channel_options(cfg))
    assert (opts["grpc.max_send_message_length"], opts["grpc.max_receive_message_length"]) == (3 << 20, 4 << 20)
    assert opts["grpc.max_connection_idle_ms"] == 60_000
    assert opts["grpc.max_connection_age_ms"] == 7_200_000
    assert opts["grpc.max_connection_age_grace_ms"] == 5_000
    assert (opts["grpc.keepalive_time_ms"], opts["grpc.keepalive_timeout_ms"]) == (30_000, 3_000)
    assert opts["grpc.max_concurrent_streams"] == 100
    assert cfg.env == {"APP_ENV": "x"}


def test_listen_forms() -> None:
    assert bind_address(parse(listen="tcp://0.0.0.0:1")[0].listen) == "0.0.0.0:1"
    assert bind_address(parse(listen=":7000")[0].listen) == "[::]:7000"
    assert bind_address(parse(listen="unix:///run/g.sock")[0].listen) == "unix:/run/g.sock"
    for bad in ("localhost", "tcp://x:port", "unix://"):
        with pytest.raises(ConfigError, match="grpc.listen"):
            parse(listen=bad)


def test_proto_globs(tmp_path: Path) -> None:
    assert parse(proto=[str(PROTOS / "*.proto")])[0].proto == sorted(str(p) for p in PROTOS.glob("*.proto"))
    with pytest.raises(ConfigError, match=r"grpc.proto\[1\]: proto file '.*nope.proto' does not exist"):
        parse(proto=[str(PROTOS / "echo.proto"), str(tmp_path / "nope.proto")])


def test_worker_error_text_as_wrap_error_reads_it() -> None:
    assert (from_worker_error("boom").code, from_worker_error("boom").message) == (grpc.StatusCode.INTERNAL, "boom")
    err = from_worker_error("7|:|denied")
    assert (err.code, err.message, err.details_bin) == (grpc.StatusCode.PERMISSION_DENIED, "denied", b"")
    assert from_worker_error("0|:|zero").code == grpc.StatusCode.INTERNAL
    assert from_worker_error("x|:|y").code == grpc.StatusCode.UNKNOWN
    assert from_worker_error(b"bad \xff".decode("utf-8", "surrogateescape")).message == "bad \ufffd"
    detail = AnyMessage(type_url="type.googleapis.com/x.Y", value=b"\x08\x01").SerializeToString()
    err = from_worker_error("3|:|bad|:|" + detail.decode("utf-8", "surrogateescape"))
    status = Status.FromString(err.details_bin)
    assert (status.code, status.message, status.details[0].type_url) == (3, "bad", "type.googleapis.com/x.Y")


def answer(ctx: bytes, body: bytes = b"out", flags: int = 0) -> Any:
    return read_answer(flags, (len(ctx),), ctx + body, LOG)


def test_answers_legacy_new_and_error_shapes() -> None:
    a = answer(b"{}")
    assert (a.body, a.headers, a.trailers, a.error) == (b"out", (), (), None)
    a = answer(b'{"X-Old":"1"}')  # roadrunner-php/grpc before 2024-09: the whole map is headers
    assert a.headers == (("x-old", "1"),)
    new = json.dumps({"headers": json.dumps({"h": "1", "n": 2}), "trailers": json.dumps({"t-bin": "\u00e9"})})
    a = answer(new.encode())
    assert a.headers == (("h", "1"),) and a.trailers == (("t-bin", "é".encode()),)
    status = Status(code=6, message="exists").SerializeToString()
    a = answer(json.dumps({"error": base64.b64encode(status).decode()}).encode(), b"")
    assert a.error is not None and (a.error.code, a.error.message) == (grpc.StatusCode.ALREADY_EXISTS, "exists")
    assert a.error.details_bin == b""  # grpc-go sends details-bin only with details
    assert answer(b'{"a":1}').error.code == grpc.StatusCode.UNKNOWN  # not map[string]string
    assert answer(b"", flags=_core.FLAG_ERROR).error.code == grpc.StatusCode.INTERNAL


def test_request_context() -> None:
    ctx = json.loads(request_context("p.S", "M", [("b", "2"), ("a", "1"), ("a", "x"), ("k-bin", b"\xff")],
                                     "ipv6:%5B::1%5D:5000", tls=True))
    assert list(ctx) == ["service", "method", "context"]
    assert ctx["context"] == {":peer.address": ["[::1]:5000"], ":peer.auth-type": ["tls"], "a": ["1", "x"],
                              "b": ["2"], "k-bin": ["\ufffd"]}
    assert peer_address("ipv4:127.0.0.1:1") == "127.0.0.1:1"
