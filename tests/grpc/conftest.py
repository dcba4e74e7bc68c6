"""Fixtures for the grpc plugin: code generated at test time, a real `fastrr serve`
with PHP grpc workers (bench/apps/grpc/worker.php), and grpcio clients.

Nothing generated is committed: once per session protoc (grpcio-tools) writes
the Python messages and stubs of bench/apps/grpc/protos, and Debian's protoc the PHP
messages, into a temp directory.
"""

from __future__ import annotations

import datetime
import importlib
import ipaddress
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
import yaml

from tests.conftest import ROOT, Server, ServerFactory, free_port

HERE = Path(__file__).resolve().parent
APP = HERE.parents[1] / "bench" / "apps" / "grpc"  # shared with `fastrr bench --apps grpc`
PROTOS = APP / "protos"
WORKER = APP / "worker.php"


@dataclass
class Generated:
    php: Path  # the PHP messages ($GRPC_GEN of the worker)
    pb: ModuleType  # echo_pb2
    types: ModuleType  # types_pb2
    stubs: ModuleType  # echo_pb2_grpc


@pytest.fixture(scope="session")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    if shutil.which("protoc") is None:
        pytest.skip("protoc (Debian's protobuf-compiler) is needed for the PHP messages")
    out = tmp_path_factory.mktemp("grpc-gen")
    py, php = out / "py", out / "php"
    py.mkdir()
    php.mkdir()
    protos = [str(p) for p in sorted(PROTOS.glob("*.proto"))]
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={py}",
                    f"--grpc_python_out={py}", *protos], check=True)
    subprocess.run(["protoc", f"-I{PROTOS}", f"--php_out={php}", *protos], check=True)
    sys.path.insert(0, str(py))
    try:
        yield Generated(php, importlib.import_module("echo_pb2"), importlib.import_module("types_pb2"),
                        importlib.import_module("echo_pb2_grpc"))
    finally:
        sys.path.remove(str(py))


def grpc_yaml(gen: Generated, rpc_port: int, grpc: dict[str, Any] | None = None, workers: int = 2,
              pool: dict[str, Any] | None = None) -> str:
    """A config with grpc on {port} (the factory's port) and rpc on `rpc_port`."""
    section: dict[str, Any] = {
        "listen": "tcp://127.0.0.1:{port}",
        "proto": [str(PROTOS / "echo.proto")],
        "env": {"GRPC_GEN": str(gen.php)},
        "pool": {"num_workers": workers, **(pool or {})},
    }
    section.update(grpc or {})
    cfg = {"version": "3", "server": {"command": f"php {WORKER}"}, "rpc": {"listen": f"tcp://127.0.0.1:{rpc_port}"},
           "logs": {"level": "info"}, "grpc": section}
    return yaml.safe_dump(cfg)


class GrpcServer:
    def __init__(self, server: Server, rpc_port: int, gen: Generated):
        self.server = server
        self.rpc = f"tcp://127.0.0.1:{rpc_port}"
        self.gen = gen
        self.target = f"127.0.0.1:{server.port}"
        self._channels: list[grpc.Channel] = []

    def channel(self, creds: grpc.ChannelCredentials | None = None, **options: Any) -> grpc.Channel:
        opts = [(f"grpc.{k}", v) for k, v in options.items()]
        ch = (grpc.secure_channel(self.target, creds, options=opts) if creds is not None
              else grpc.insecure_channel(self.target, options=opts))
        self._channels.append(ch)
        return ch

    def stub(self, creds: grpc.ChannelCredentials | None = None, **options: Any) -> Any:
        return self.gen.stubs.EchoStub(self.channel(creds, **options))

    def close(self) -> None:
        for ch in self._channels:
            ch.close()


@pytest.fixture
def grpc_server(fastrr: ServerFactory, gen: Generated) -> Iterator[Any]:
    """start(grpc=..., workers=..., pool=...) → GrpcServer; every one is stopped in teardown."""
    made: list[GrpcServer] = []

    def start(grpc: dict[str, Any] | None = None, workers: int = 2, pool: dict[str, Any] | None = None,
              wait: bool = True) -> GrpcServer:
        rpc_port = free_port()
        server = fastrr.start(raw_config=grpc_yaml(gen, rpc_port, grpc, workers, pool), wait=wait)
        if wait:
            server.wait_workers(workers)
        made.append(GrpcServer(server, rpc_port, gen))
        return made[-1]

    yield start
    for s in made:
        s.close()


# -- certificates -------------------------------------------------------------------------


@dataclass
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_cert: Path  # a client certificate from another CA
    other_key: Path

    def read(self, name: str) -> bytes:
        return Path(getattr(self, name)).read_bytes()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    out = tmp_path_factory.mktemp("grpc-certs")
    now = datetime.datetime.now(datetime.UTC)

    def write_key(name: str, key: Any) -> Path:
        path = out / name
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return path

    def make(name: str, issuer: Any, issuer_key: Any, ca: bool, san: list[Any] | None) -> tuple[Any, Any, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(issuer_key or key, hashes.SHA256())
        path = out / f"{name}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert, key, path

    ca, ca_key, ca_path = make("test-ca", None, None, True, None)
    _, skey, spath = make("localhost", ca.subject, ca_key, False,
                          [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    _, ckey, cpath = make("client", ca.subject, ca_key, False, None)
    other, other_key, _ = make("other-ca", None, None, True, None)
    _, okey, opath = make("stranger", other.subject, other_key, False, None)
    return Certs(ca_path, spath, write_key("server.key", skey), cpath, write_key("client.key", ckey),
                 opath, write_key("stranger.key", okey))


__all__ = ["ROOT", "Certs", "Generated", "GrpcServer", "certs", "gen", "grpc_server"]
