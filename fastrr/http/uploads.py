"""multipart/form-data bodies, parsed while they arrive: files stream to temp files.

RoadRunner parses multipart bodies in Go (32 MB in memory, the rest spilled to
temp files) after the whole body is read. fastrr parses them incrementally as
the bytes come off the socket, so a 1 GB upload costs the front a few hundred
KB of buffers, never the body:

- non-file fields are kept in memory (bounded by FIELDS_MEMORY_LIMIT) and sent
  as RoadRunner's JSON data tree (`parsed: true`, fastrr/http/forms.py);
- file parts are written to `upload*` temp files in `http.uploads.dir` and
  described in the `uploads` tree: `{"name","mime","size","error","tmpName"}`
  per file, PHP bracket syntax, `f[]` → a list;
- the temp files are removed once the response has been written (or the
  request failed), by `cleanup()`.

Per-file outcomes use PHP's UPLOAD_ERR_* codes, as RoadRunner does: 0 ok,
1 over `http.uploads.max_file_size` (PHP's upload_max_filesize; the request
goes on), 4 no file (empty filename), 6 no temp dir, 7 cannot write, 8 the
extension is forbidden or not allowed. Whole-request failures raise
MultipartError: 400 for malformed input, 413 for too many parts or too much
field data.

Rules of this file:
- The stream is parsed as if it started with CRLF, so every delimiter is
  `CRLF "--" boundary` (RFC 2046 §5.1.1: the first one may also start the body).
- In BODY, everything but the last `len(delimiter) - 1` bytes of the buffer is
  part data for sure and leaves at once; only that tail is kept, so memory is
  bounded by one network read plus the tail.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from fastrr.http.forms import FormError, build_tree

UPLOAD_ERR_OK = 0
UPLOAD_ERR_INI_SIZE = 1
UPLOAD_ERR_NO_FILE = 4
UPLOAD_ERR_NO_TMP_DIR = 6
UPLOAD_ERR_CANT_WRITE = 7
UPLOAD_ERR_EXTENSION = 8

FIELDS_MEMORY_LIMIT = 32 * 1024 * 1024  # RoadRunner's in-memory multipart limit
MAX_BOUNDARY = 70  # RFC 2046 §5.1.1

_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _BODY, _EPILOGUE = range(5)


class MultipartError(Exception):
    """The body cannot be used: `status` is 400 (malformed) or 413 (over a limit)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class UploadPolicy:
    """`http.uploads` as the parser needs it."""

    dir: str = ""
    forbid: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()
    max_file_size: int = 0  # bytes; 0: only max_request_size limits a file
    max_parts: int = 1000
    max_part_header_size: int = 16 * 1024

    @classmethod
    def from_config(cls, cfg: Any) -> UploadPolicy:
        return cls(
            dir=cfg.dir or tempfile.gettempdir(),
            forbid=frozenset(ext.lower() for ext in cfg.forbid),
            allow=frozenset(ext.lower() for ext in cfg.allow),
            max_file_size=cfg.max_file_size * 1024 * 1024,
            max_parts=cfg.max_parts,
            max_part_header_size=cfg.max_part_header_size,
        )

    def extension_allowed(self, ext: str) -> bool:
        """Forbid wins; a non-empty allow list admits only what it names."""
        if ext in self.forbid:
            return False
        return not self.allow or ext in self.allow


class UploadedFile:
    """One file leaf of the uploads tree."""

    __slots__ = ("name", "mime", "size", "error", "tmp_name", "fd", "full_path")

    def __init__(self, name: str, mime: str, full_path: str = ""):
        self.name = name
        self.full_path = full_path or name  # the file name as PHP reads it (directories kept)
        self.mime = mime
        self.size = 0
        self.error = UPLOAD_ERR_OK
        self.tmp_name = ""
        self.fd = -1

    def to_json(self) -> dict[str, Any]:
        # fullPath is fastrr's (RoadRunner's workers ignore it): SuperglobalsWorker's $_FILES full_path.
        return {"name": self.name, "mime": self.mime, "size": self.size, "error": self.error,
                "tmpName": self.tmp_name, "fullPath": self.full_path}


def boundary_from_content_type(content_type: str) -> bytes:
    """The `boundary` parameter of a multipart Content-Type (RFC 2046 §5.1.1)."""
    _, params = parse_header_params(content_type)
    boundary = params.get("boundary", "")
    if not boundary:
        raise MultipartError(400, "multipart body without a boundary parameter")
    if len(boundary) > MAX_BOUNDARY or not boundary.isascii():
        raise MultipartError(400, "invalid multipart boundary")
    return boundary.encode("ascii")


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """`form-data; name="a"; filename*=UTF-8''x%20y` → ("form-data", {...}).

    Quoted strings may hold backslash escapes and semicolons; `name*` values
    (RFC 5987/2231 `charset'lang'pct-encoded`) win over plain `name` values.
    Parameter names are lowercased.
    """
    pos, n = 0, len(value)
    semi = value.find(";")
    kind = (value if semi < 0 else value[:semi]).strip().lower()
    pos = n if semi < 0 else semi + 1
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    while pos < n:
        while pos < n and value[pos] in " \t;":
            pos += 1
        eq = value.find("=", pos)
        if eq < 0:
            break
        name = value[pos:eq].strip().lower()
        pos = eq + 1
        while pos < n and value[pos] in " \t":
            pos += 1
        if pos < n and value[pos] == '"':
            pos += 1
            out = []
            while pos < n and value[pos] != '"':
                if value[pos] == "\\" and pos + 1 < n:
                    pos += 1
                out.append(value[pos])
                pos += 1
            pos += 1  # the closing quote
            text = "".join(out)
        else:
            end = value.find(";", pos)
            end = n if end < 0 else end
            text = value[pos:end].strip()
            pos = end
        if name.endswith("*"):
            charset, _, rest = text.partition("'")
            _, _, encoded = rest.partition("'")
            try:
                extended[name[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="replace")
            except LookupError:
                extended[name[:-1]] = unquote(encoded, errors="replace")
        elif name:
            params[name] = text
    params.update(extended)
    return kind, params


_PHP_FILENAME = re.compile(r'(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', re.IGNORECASE)


def php_filename(disposition: str) -> str | None:
    """The `filename` parameter as PHP's multipart parser reads it: in a quoted value only
    `\\\\` and `\\"` are escapes, other backslashes stay (C:\\dir\\a.txt keeps them)."""
    m = _PHP_FILENAME.search(disposition)
    if m is None:
        return None
    if m.group(1) is None:
        return m.group(2).strip()
    return re.sub(r'\\([\\"])', r"\1", m.group(1))


def file_extension(name: str) -> str:
    """Go's filepath.Ext, lowercased: from the last dot of the name, dot included."""
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


class MultipartReceiver:
    """Incremental multipart/form-data parser; see the module docstring."""

    def __init__(self, policy: UploadPolicy, boundary: bytes):
        self.policy = policy
        self.delimiter = b"\r\n--" + boundary
        self.buf = bytearray(b"\r\n")
        self.state = _PREAMBLE
        self.parts = 0
        self.fields: list[tuple[str, str]] = []
        self.fields_bytes = 0
        self.files: list[tuple[str, UploadedFile]] = []
        # The part being read: a field (bytearray), a file, or None to discard.
        self._field: bytearray | None = None
        self._field_name = ""
        self._file: UploadedFile | None = None

    # -- input -------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self.state == _EPILOGUE:
            return
        self.buf += data
        self._parse()

    def finish(self) -> None:
        """The body ended: it must have ended with the close delimiter."""
        if self.state != _EPILOGUE:
            self._close_part()
            raise MultipartError(400, "multipart body ended before its closing boundary")

    def _parse(self) -> None:
        buf = self.buf
        delim = self.delimiter
        while True:
            state = self.state
            if state == _BODY:
                at = buf.find(delim)
                if at < 0:
                    safe = len(buf) - len(delim) + 1
                    if safe > 0:
                        self._part_data(buf, safe)
                        del buf[:safe]
                    return
                if at:
                    self._part_data(buf, at)
                del buf[:at + len(delim)]
                self._close_part()
                self.state = _AFTER_DELIMITER
            elif state == _PREAMBLE:
                at = buf.find(delim)
                if at < 0:
                    # Keep only what could still begin a delimiter.
                    if len(buf) >= len(delim):
                        del buf[:len(buf) - len(delim) + 1]
                    return
                del buf[:at + len(delim)]
                self.state = _AFTER_DELIMITER
            elif state == _AFTER_DELIMITER:
                # close-delimiter `--`, or transport padding (LWSP) then CRLF.
                if len(buf) < 2:
                    return
                if buf[:2] == b"--":
                    self.state = _EPILOGUE
                    buf.clear()
                    return
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if len(buf) > 256 or buf.strip(b" \t"):
                        raise MultipartError(400, "malformed multipart boundary line")
                    return
                if buf[:eol].strip(b" \t"):
                    raise MultipartError(400, "malformed multipart boundary line")
                del buf[:eol + 2]
                self.parts += 1
                if self.parts > self.policy.max_parts:
                    raise MultipartError(413, f"more than {self.policy.max_parts} multipart parts")
                self.state = _HEADERS
            elif state == _HEADERS:
                if buf[:2] == b"\r\n":
                    end, head = 2, b""
                else:
                    at = buf.find(b"\r\n\r\n")
                    if at < 0:
                        if len(buf) > self.policy.max_part_header_size:
                            raise MultipartError(400, "multipart part header too large")
                        return
                    if at > self.policy.max_part_header_size:
                        raise MultipartError(400, "multipart part header too large")
                    end, head = at + 4, bytes(buf[:at])
                del buf[:end]
                self._open_part(head)
                self.state = _BODY
            else:  # _EPILOGUE
                buf.clear()
                return

    # -- parts -----------------------------------------------------------------------

    def _open_part(self, head: bytes) -> None:
        disposition = ""
        mime = ""
        for line in head.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise MultipartError(400, "malformed multipart part header")
            lname = name.lower()
            if lname == b"content-disposition":
                disposition = value.strip().decode("utf-8", "replace")
            elif lname == b"content-type":
                mime = value.strip().decode("utf-8", "replace")
        self._field = None
        self._file = None
        kind, params = parse_header_params(disposition)
        field_name = params.get("name", "")
        if kind != "form-data" or not field_name:
            return  # Go's multipart reader skips parts without a form name; so do we.
        if "filename" not in params:
            self._field = bytearray()
            self._field_name = field_name
            return
        filename = params["filename"].replace("\\", "/").rsplit("/", 1)[-1]
        upload = UploadedFile(filename, mime, php_filename(disposition) or params["filename"])
        self.files.append((field_name, upload))
        if not filename:
            upload.error = UPLOAD_ERR_NO_FILE
            return
        if not self.policy.extension_allowed(file_extension(filename)):
            upload.error = UPLOAD_ERR_EXTENSION
            return
        try:
            fd, path = tempfile.mkstemp(prefix="upload", dir=self.policy.dir)
        except OSError:
            upload.error = UPLOAD_ERR_NO_TMP_DIR
            return
        upload.fd = fd
        upload.tmp_name = path
        self._file = upload

    def _part_data(self, buf: bytearray, size: int) -> None:
        if self._file is not None:
            upload = self._file
            limit = self.policy.max_file_size
            if limit and upload.size + size > limit:
                self._drop_file(upload, UPLOAD_ERR_INI_SIZE)
                return
            with memoryview(buf) as view, view[:size] as chunk:
                try:
                    written = 0
                    while written < size:
                        written += os.write(upload.fd, chunk[written:])
                except OSError:
                    self._drop_file(upload, UPLOAD_ERR_CANT_WRITE)
                    return
            upload.size += size
        elif self._field is not None:
            self.fields_bytes += size
            if self.fields_bytes > FIELDS_MEMORY_LIMIT:
                raise MultipartError(413, f"multipart fields over {FIELDS_MEMORY_LIMIT >> 20} MB")
            self._field += buf[:size]

    def _drop_file(self, upload: UploadedFile, error: int) -> None:
        """The file failed: no temp file, PHP error code set, rest of its data discarded."""
        upload.error = error
        upload.size = 0
        if upload.fd >= 0:
            os.close(upload.fd)
            upload.fd = -1
        if upload.tmp_name:
            _unlink(upload.tmp_name)
            upload.tmp_name = ""
        self._file = None

    def _close_part(self) -> None:
        if self._field is not None:
            self.fields.append((self._field_name, self._field.decode("utf-8", "replace")))
            self._field = None
        if self._file is not None:
            upload = self._file
            if upload.fd >= 0:
                os.close(upload.fd)
                upload.fd = -1
            self._file = None

    # -- output ------------------------------------------------------------------------

    def fields_json(self) -> bytes:
        try:
            tree = build_tree(self.fields)
        except FormError as exc:
            raise MultipartError(400, str(exc)) from None
        return json.dumps(tree, ensure_ascii=False, separators=(",", ":")).encode()

    def uploads_json(self) -> bytes:
        try:
            tree = build_tree(self.files)  # type: ignore[arg-type]
        except FormError as exc:
            raise MultipartError(400, str(exc)) from None
        return json.dumps(tree, ensure_ascii=False, separators=(",", ":"),
                          default=UploadedFile.to_json).encode()

    def temp_paths(self) -> list[str]:
        return [upload.tmp_name for _, upload in self.files if upload.tmp_name]

    def cleanup(self) -> None:
        """Close and remove every temp file (idempotent)."""
        self._field = None
        self._file = None
        for _, upload in self.files:
            if upload.fd >= 0:
                os.close(upload.fd)
                upload.fd = -1
            if upload.tmp_name:
                _unlink(upload.tmp_name)
                upload.tmp_name = ""


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
