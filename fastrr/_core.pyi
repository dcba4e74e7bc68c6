"""fastrr's hot path in C (sources in csrc/, invariants in csrc/README.md).

Everything here holds the GIL, never blocks, and copies whatever outlives
the call: results never point into the caller's buffers.
"""

from collections.abc import Sequence
from typing import Any, Final, final

from typing_extensions import Buffer

FLAG_CONTROL: Final = 0x01
FLAG_RAW: Final = 0x04
FLAG_JSON: Final = 0x08
FLAG_MSGPACK: Final = 0x10
FLAG_GOB: Final = 0x20
FLAG_ERROR: Final = 0x40
FLAG_PROTO: Final = 0x80

# goridge byte 10 bits
STREAM: Final = 0x01
STOP: Final = 0x02
PING: Final = 0x04
PONG: Final = 0x08

BODY_OTHER: Final = 0
BODY_URLENCODED: Final = 1
BODY_MULTIPART: Final = 2

LAST_CHUNK: Final[bytes]
"""b"0\\r\\n\\r\\n": the last-chunk and the empty trailer section of a chunked body."""

class HttpError(Exception):
    """The request cannot be served: malformed (400), body too large (413) or
    head too large (431). ``str(e)`` is the reason; ``e.args == (status, reason)``."""

    status: int
    reason: str
    def __init__(self, status: int, reason: str) -> None: ...

class FrameError(Exception):
    """A worker broke the protocol: bytes that are not a goridge v3 frame,
    PHP's "Could not open input file" text, an oversized payload, or a response
    context that is not valid JSON / has a bad status."""

@final
class Request:
    """An immutable HTTP/1.x request head, made only by :func:`parse_request`.

    It owns a copy of the head bytes (request line through the blank line), so
    the caller may delete them from its read buffer right away."""

    @property
    def method(self) -> str: ...
    @property
    def target(self) -> str:
        """The raw request-target, latin-1 decoded (origin-, absolute-,
        authority- (CONNECT) or asterisk-form (OPTIONS))."""
    @property
    def http_minor(self) -> int:
        """0 for HTTP/1.0, 1 for HTTP/1.1."""
    @property
    def head_len(self) -> int:
        """Bytes of the buffer used by the head, including up to 4 skipped
        empty lines before the request line and the final CRLF CRLF. The body
        (if any) starts at this offset."""
    @property
    def content_length(self) -> int:
        """Content-Length, or -1 when absent (always -1 when chunked)."""
    @property
    def chunked(self) -> bool:
        """Transfer-Encoding: chunked (the only coding accepted)."""
    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1: True unless a Connection option ``close``; HTTP/1.0: True
        only with ``keep-alive`` and without ``close``."""
    @property
    def expect_continue(self) -> bool:
        """``Expect: 100-continue`` on an HTTP/1.1 request."""
    @property
    def body_kind(self) -> int:
        """BODY_URLENCODED / BODY_MULTIPART when the first Content-Type contains
        that media type (case-insensitive substring, as RoadRunner), else BODY_OTHER."""
    @property
    def host(self) -> str | None:
        """The Host header value (validated like Go's net/http), or None."""
    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """All header fields in arrival order, names as sent, values trimmed.
        Built on every access: for cold paths and tests."""
    def get_header(self, name: Buffer, /) -> bytes | None:
        """The first value of a header, name compared case-insensitively."""

def parse_request(buf: Buffer, max_head: int) -> Request | None:
    """Parse a request head from the start of ``buf``.

    Returns None while the head is incomplete and at most ``max_head`` bytes
    long. Raises :class:`HttpError` 431 when the head (complete or not) is
    longer than ``max_head`` or has more than 100 header fields, and 400 for
    anything malformed or ambiguous (request smuggling shapes included); see
    csrc/README.md for the exact rules."""

class ChunkedDecoder:
    """Incremental decoder of a chunked request body (RFC 9112 §7.1)."""

    def __init__(self, max_size: int) -> None: ...
    def feed(self, data: Buffer, /) -> int:
        """Consume as much of ``data`` as belongs to the chunked body and return
        how many bytes that was (less than ``len(data)`` only once ``done``;
        the rest belongs to the next request). Raises HttpError 400 for a
        malformed body and 413 once the decoded size would exceed max_size.
        After an error every feed() raises the same error."""
    def take(self) -> bytes:
        """The body bytes decoded since the last take()."""
    @property
    def done(self) -> bool:
        """True after the last chunk and the trailer section (trailers are
        validated and discarded)."""

def crc32(data: Buffer, /) -> int:
    """CRC-32/IEEE, equal to ``zlib.crc32(data)``."""

def encode_frame(flags: int, payload: Buffer = b"", options: Sequence[int] = (), byte10: int = 0) -> bytes:
    """One goridge v3 frame: header (CRC of bytes 0..5), options (at most 10,
    u32 LE each) and payload. ValueError for out-of-range arguments."""

class FrameReader:
    """Incremental goridge v3 frame decoder for a worker's output."""

    def __init__(self, max_payload: int) -> None: ...
    def feed(self, data: Buffer, /) -> list[tuple[int, int, tuple[int, ...], bytes]] | None:
        """Add ``data``; return every frame it completes as
        ``(flags, byte10, options, payload)``, or None if it completes none.

        Raises FrameError for: PHP's "Could not open input file…" text (the
        message is that text); bytes that are not a frame header - a CRC
        mismatch, a version nibble other than 1, or a first byte that cannot
        start a frame (message ``"validation failed on the message sent to
        STDOUT: " + repr(first 200 bytes)``); a header length below 3 words;
        a payload longer than max_payload. Errors are sticky. Frames completed
        before the bad bytes in the same call are still returned, and the next
        feed() (even ``feed(b"")``) raises."""
    @property
    def pending(self) -> int:
        """Bytes received that are not part of a returned frame yet."""
    @property
    def max_payload(self) -> int: ...

def encode_http_context(
    req: Request, remote_addr: str, scheme: str, parsed: bool = False, uploads: Buffer | None = None
) -> bytes:
    """RoadRunner's legacy JSON request context for ``req``:
    ``{"remoteAddr","protocol","method","uri","headers","cookies","rawQuery",
    "parsed","uploads","attributes"}`` (rules in csrc/README.md). ``uploads``
    is inserted verbatim (it must already be JSON); None gives ``null``."""

def encode_http_request(
    req: Request, remote_addr: str, scheme: str, body: Buffer, parsed: bool, uploads: Buffer | None = None
) -> bytes:
    """One complete goridge frame for a worker: FLAG_JSON, options
    ``[len(context)]``, payload = context JSON + body."""

def build_response(
    payload: Buffer,
    ctx_len: int,
    keep_alive: bool,
    head_request: bool,
    http_minor: int,
    stream: bool = False,
    codec: int = FLAG_JSON,
) -> tuple[int, bytes]:
    """The HTTP response for a worker reply (``payload = context || body``).

    Returns ``(status, data)`` where data is everything to write: status line,
    headers, framing and body. Informational 1xx replies give only the
    status line + headers + CRLF (b"" for HTTP/1.0 clients, which must not
    get 1xx) and the caller keeps reading frames. With ``stream=True`` on
    HTTP/1.1 the body goes out as the first chunk and the caller sends later
    chunks with :func:`encode_chunk` and ends with LAST_CHUNK (nothing at all
    for HEAD requests or 204/304); on HTTP/1.0 the response is close-delimited
    (``Connection: close``). Raises FrameError for a malformed context, a
    status outside 100..599, or 101.

    ``codec`` is the reply frame's flags: with FLAG_PROTO set the context is
    a protobuf ``http.v1.Response`` (decoded directly, same header rules;
    an absent status is proto3's 0, so it fails like any status out of
    range), otherwise the JSON object (flags 0 or FLAG_JSON)."""

def encode_chunk(data: Buffer, /) -> bytes:
    """``<hex len>\\r\\n<data>\\r\\n``; b"" for empty data (an empty chunk would end the body)."""

def http_date() -> bytes:
    """The current time as an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), cached per second."""

# -- protobuf contexts (csrc/proto.c) --------------------------------------------

def encode_http_context_proto(
    req: Request, remote_addr: str, scheme: str, parsed: bool = False, uploads: Buffer | None = None
) -> bytes:
    """RoadRunner's protobuf request context, a serialized ``http.v1.Request``,
    with the same content as :func:`encode_http_context` (canonical header
    names, no Host, merged repeated headers, cookie rules, absolute uri).
    proto3: empty strings, ``parsed=False``, no uploads and the (always
    empty) attributes are not written. ``string`` fields are made valid
    UTF-8 (U+FFFD per bad byte); header and cookie values are ``bytes`` and
    go out as received (cookies %XX-decoded)."""

def encode_http_request_proto(
    req: Request, remote_addr: str, scheme: str, body: Buffer, parsed: bool, uploads: Buffer | None = None
) -> bytes:
    """One complete goridge frame for a worker: FLAG_PROTO, options
    ``[len(context)]``, payload = ``http.v1.Request`` + body."""

def proto_response_to_json(ctx: Buffer, /) -> bytes:
    """An ``http.v1.Response`` context as the JSON response context
    ``{"status":N,"headers":{"Name":["v",...]}}`` (build_response reads
    protobuf directly with ``codec=FLAG_PROTO``; this is for tests and
    tools). Strict: malformed varints, truncated fields, wrong wire types
    of known fields raise FrameError; unknown fields are skipped; a repeated
    map key keeps its last entry. Names and values are JSON-escaped
    (``"``, ``\\``, bytes < 0x20) and otherwise copied byte for byte."""

# -- the C HTTP engine (csrc/engine*.c) -------------------------------------------

class Engine:
    """The HTTP/1.1 data path in a native thread that never holds the GIL
    (``http.engine: c``): accepts, parses, reads bodies, encodes worker frames,
    dispatches to its workers, writes responses. Python drives it with the
    methods below (each waits for the engine thread, with the GIL released)
    and reads its events when ``event_fd`` is readable. See
    fastrr/http/engine_pool.py for the event protocol and csrc/README.md."""

    def __init__(
        self,
        listen_fd: int = -1,
        *,
        max_header_size: int = 65536,
        max_body: int = 1000 << 20,
        max_request_size: int = 1000,
        read_timeout: float = 60.0,
        idle_timeout: float = 75.0,
        allocate_timeout: float = 60.0,
        exec_ttl: float = 60.0,
        linger: float = 2.0,
        doomed_wait: float = 1.0,
        max_queue_size: int = 0,
        internal_error_code: int = 500,
        debug: bool = False,
        raw_body: bool = False,
        log_level: int = 20,
        access_log: int = 0,
        max_stop_retries: int = 8,
        pipeline_limit: int = 1 << 20,
        max_worker_memory: int = 0,
        proto: bool = False,
        log_fds: Sequence[int] | None = None,
        log_encoding: str = "console",
        static_dir: str | bytes | None = None,
        static_forbid: Sequence[str] | None = None,
        static_allow: Sequence[str] | None = None,
        metrics: bool = False,
        leak_window: int = 0,
        leak_min_climb: int = 0,
        leak_horizon: int = 0,
        detach_paths: Sequence[bytes] | None = None,
    ) -> None:
        """detach_paths: exact request paths (target before '?', bytes, 1..8192 long, at most
        256) whose GETs without a body become ("detach", fd, request, leftover) events: the
        engine forgets the connection and fd, a dup of its socket, is the caller's to close."""
    @property
    def event_fd(self) -> int:
        """An eventfd, readable when poll_events() has something."""
    @property
    def closed(self) -> bool: ...
    def listen(self, fd: int, /) -> None:
        """Accept on a listening, non-blocking socket (it stays the caller's)."""
    def add_worker(self, id: int, rfd: int, wfd: int, max_jobs: int = 0) -> None:
        """Serve with a worker past its PID handshake; the engine uses dups of the fds."""
    def stop_worker(self, id: int, /) -> int:
        """Send the CONTROL stop frame: 0 now, 1 after its request (a stop_sent event
        follows), -1 unknown worker."""
    def set_active_limit(self, limit: int, /) -> None:
        """At most `limit` workers run a request at once (0: no limit); raising it dispatches
        queued requests to free workers at once (http.pool.active_limit)."""
    def set_raw_forms(self, on: bool, /) -> None:
        """Form bodies as PHP's SAPIs get them: urlencoded as sent, multipart parsed only for
        POST (the workers asked for it in their handshake: HttpServer.parses_form)."""
    def resume_worker(self, id: int, /) -> bool:
        """A worker held after a max_memory event goes back to work."""
    def remove_worker(self, id: int, reason: str = "") -> bool:
        """The process is gone: its request is answered 502 (reason shown in debug)."""
    def stop_accepting(self) -> None:
        """Stop accepting; idle connections close, busy ones after their answer."""
    def abort_connections(self) -> None: ...
    def stats(self) -> dict[str, Any]:
        """connections, in_flight, queued, accepted, requests, detached (handed to Python),
        conn_allocs (connection structs alive: open, or closed with a job still on a worker),
        conn_buffer_bytes (capacity of the open connections' own buffers: none for one that got
        its answer and waits; a partial head's or a write remainder's go with the 0.5 s scan),
        pool_bytes (request buffers kept for reuse, bounded), trims (malloc_trim after a burst
        of closes), conn_struct_bytes (one connection struct: what an idle one costs), and
        workers: {id: {state, execs, last_used, exec_started}} (loop.time() clock)."""
    def metrics(self) -> dict[str, Any] | None:
        """None unless made with metrics=True (http_metrics); else {"requests": {status:
        {"count", "sum" (seconds), "buckets" (per bound, not cumulative, +Inf last)}},
        "bounds": [seconds], "no_free_workers": n}, copied by the engine thread now."""
    def poll_events(self) -> list[tuple[Any, ...]]:
        """The events since the last call (see fastrr/http/engine_pool.py)."""
    def upload_go(self, token: int, /) -> bool: ...
    def upload_ack(self, token: int, n: int, /) -> bool: ...
    def upload_done(self, token: int, fields: Buffer, uploads: Buffer | None, /) -> bool: ...
    def upload_fail(self, token: int, status: int, reason: str, /) -> bool: ...
    def upload_release(self, token: int, /) -> bool: ...
    def static_serve(self, token: int, status: int, head: Buffer, body: Buffer = b"", fd: int = -1,
                     offset: int = 0, count: int = 0) -> None:
        """Answer a ("static", token, request) event: head = status line + header lines
        without Connection and the blank line (the engine adds both), body in memory,
        then `count` bytes of file `fd` from `offset`, sent with sendfile from the
        engine's own dup (the caller closes fd). The static_* answers are queued
        without waiting for the engine thread; a request gone meanwhile makes them
        no-ops."""
    def static_miss(self, token: int, /) -> None:
        """No file after all: the request goes to PHP (with its body)."""
    def static_abort(self, token: int, /) -> None:
        """Close the connection of a static event (the middleware failed)."""
    def close(self) -> list[tuple[Any, ...]]:
        """Stop the thread, close the connections and the worker fd dups; the last events."""

def _form_json(body: Buffer, /) -> bytes:
    """The engine's urlencoded-form encoder (tests): RoadRunner's JSON data tree, as
    fastrr/http/forms.py makes it, or ValueError(reason) where that raises FormError."""

def send_all(fds: Sequence[int], data: Buffer, /) -> list[tuple[int, int, int]]:
    """send() `data` to every socket of `fds` (non-blocking, the GIL released); returns
    (index, bytes sent, errno) for each socket that did not take all of it (fanout.c)."""
