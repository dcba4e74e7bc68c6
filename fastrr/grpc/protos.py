"""The services of `grpc.proto`, read at start-up with protoc (grpcio-tools' bundled one).

RoadRunner parses each file with a Go .proto parser and registers every
service of the file and of the files it imports (relative to its directory),
each as `<package>.<Service>` with its rpc names (parser/parse.go). fastrr
asks protoc for a FileDescriptorSet instead, with the same import root (the
file's directory) plus protoc's own well-known types, so:

- a syntax error, an unknown type or a missing import is a start-up error
  quoting protoc and naming the file (RoadRunner skips an import it cannot
  parse and serves without its services);
- the descriptors are complete, which server reflection needs (RoadRunner v6
  needs a separate `protoreg` plugin for that);
- services of imported files are served too, as in RoadRunner; the same file
  reached twice counts once, but one service name defined by two different
  files is an error (grpc-go refuses such a registration as well).

Streaming is recorded but, as in RoadRunner, not served as streaming: every
method is a unary handler (rr-plugins.md §1.4).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import resources

from google.protobuf import descriptor_pb2

PROTOC_TIMEOUT = 60.0


class ProtoError(Exception):
    """A proto file cannot be read (the text names the file and quotes protoc)."""


@dataclass
class Method:
    name: str
    client_streaming: bool = False
    server_streaming: bool = False


@dataclass
class Service:
    name: str  # <package>.<Service>, as grpc-go and the PHP interface's NAME
    file: str  # the .proto it is defined in (as protoc names it)
    methods: list[Method] = field(default_factory=list)


@dataclass
class Protos:
    services: dict[str, Service] = field(default_factory=dict)
    # every file read, imports first (the order a DescriptorPool needs)
    files: list[descriptor_pb2.FileDescriptorProto] = field(default_factory=list)


def _well_known() -> str:
    return str(resources.files("grpc_tools") / "_proto")


def compile_file(path: str) -> descriptor_pb2.FileDescriptorSet:
    """One .proto and its imports as protoc reads them, import root = its directory."""
    root = os.path.dirname(os.path.abspath(path)) or "."
    with tempfile.TemporaryDirectory(prefix="fastrr-proto-") as tmp:
        out = os.path.join(tmp, "set.pb")
        # A child process: protoc writes its errors to fd 2 from C, which only a
        # pipe of our own can capture for the message.
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"-I{_well_known()}",
               "--include_imports", f"--descriptor_set_out={out}", os.path.abspath(path)]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=PROTOC_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProtoError(f"proto file '{path}': cannot run protoc: {exc}") from None
        if done.returncode != 0 or not os.path.exists(out):
            text = (done.stderr or done.stdout).decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            raise ProtoError(f"proto file '{path}' cannot be read: {text}")
        with open(out, "rb") as fh:
            return descriptor_pb2.FileDescriptorSet.FromString(fh.read())


def load(paths: list[str]) -> Protos:
    protos = Protos()
    seen: set[str] = set()
    for path in paths:
        for file in compile_file(path).file:
            if file.name in seen:
                continue
            seen.add(file.name)
            protos.files.append(file)
            for svc in file.service:
                name = f"{file.package}.{svc.name}" if file.package else svc.name
                other = protos.services.get(name)
                if other is not None:
                    raise ProtoError(f"proto file '{path}': service {name} is defined twice "
                                     f"({other.file} and {file.name})")
                protos.services[name] = Service(name, file.name, [
                    Method(m.name, m.client_streaming, m.server_streaming) for m in svc.method])
    return protos
