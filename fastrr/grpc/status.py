"""gRPC status codes and `google.rpc.Status`, the message behind `grpc-status-details-bin`.

The Status message (code = 1, message = 2, repeated google.protobuf.Any
details = 3; googleapis' google/rpc/status.proto) is declared here as a
descriptor in a private pool rather than depending on googleapis-common-protos
for one message; a private pool also cannot clash with an application that
loads the real one.

What a worker's failure becomes, as roadrunner-server/grpc proxy.go maps it:
- a `GRPCException` reply (context `{"error": base64 Status}`): that Status,
  details included, sent as grpc-go's status.ErrorProto does (grpc-status,
  grpc-message, and grpc-status-details-bin when it has details);
- an ERROR frame `code|:|message|:|<Any>...` (`wrapError`): that code (0 →
  INTERNAL), message and details; a non-numeric code → UNKNOWN with the text;
- any other ERROR frame text: INTERNAL with the text.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

DELIMITER = "|:|"
CODES: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def _status_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(any_pb2.DESCRIPTOR.serialized_pb))
    file = descriptor_pb2.FileDescriptorProto(name="google/rpc/status.proto", package="google.rpc",
                                              syntax="proto3", dependency=["google/protobuf/any.proto"])
    msg = file.message_type.add(name="Status")
    F = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="code", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL, json_name="code")
    msg.field.add(name="message", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, json_name="message")
    msg.field.add(name="details", number=3, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                  type_name=".google.protobuf.Any", json_name="details")
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


Status = _status_class()
AnyMessage = message_factory.GetMessageClass(
    Status.DESCRIPTOR.fields_by_name["details"].message_type)


def code_of(number: int) -> grpc.StatusCode:
    """A code as grpcio names it; one outside 0..16 cannot be sent by grpcio and becomes UNKNOWN."""
    return CODES.get(number, grpc.StatusCode.UNKNOWN)


class CallError(Exception):
    """The status a call ends with: code, message and the serialized Status when it has details."""

    def __init__(self, code: grpc.StatusCode, message: str, details_bin: bytes = b""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details_bin = details_bin


def from_status_bytes(data: bytes) -> CallError | None:
    """A PHP GRPCException's Status; None when its code is OK (grpc-go then answers as a success)."""
    status = Status.FromString(data)
    if status.code == 0:
        return None
    details = status.SerializeToString(deterministic=True) if len(status.details) else b""
    return CallError(code_of(status.code), status.message, details)


def _clean(text: str) -> str:
    """Undecodable bytes (kept for the details) become U+FFFD in a status message."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def from_worker_error(text: str) -> CallError:
    """An ERROR frame's text (decoded with surrogateescape, so details keep their bytes),
    as wrapError reads it."""
    parts = text.split(DELIMITER)
    if len(parts) < 2:
        return CallError(grpc.StatusCode.INTERNAL, _clean(text))
    head = parts[0].strip()
    if not head.isdigit() or int(head) > 0xFFFFFFFF:
        return CallError(grpc.StatusCode.UNKNOWN, _clean(text))
    number = int(head) or grpc.StatusCode.INTERNAL.value[0]
    message = _clean(parts[1])
    status = Status(code=number, message=message)
    for chunk in parts[2:]:
        detail = AnyMessage()
        try:
            detail.ParseFromString(chunk.encode("utf-8", "surrogateescape"))
        except Exception:  # Go skips a detail that does not decode
            continue
        status.details.append(detail)
    details = status.SerializeToString(deterministic=True) if len(status.details) else b""
    return CallError(code_of(number), message, details)
