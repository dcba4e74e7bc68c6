"""`sendfile`: a worker answers with `X-Sendfile: /path` and fastrr sends that file.

The header is removed; the worker's status and other headers are kept, the
worker's body is dropped, Content-Length becomes the file's size (and
Content-Type is guessed from the name when the worker set none). The file is
sent with sendfile like a static file, so PHP never reads it. A path that
cannot be opened as a regular file gives 404 (logged). Relative paths are
relative to fastrr's working directory (the config file's directory).
Paths come from the application, which is trusted, as with nginx's
X-Accel-Redirect.
"""

from __future__ import annotations

import os
import stat

from fastrr.http.middleware import Middleware, RequestInfo
from fastrr.http.middleware.static import content_type
from fastrr.http.response import FileBody, Response
from fastrr.log import Logger


class SendfileMiddleware(Middleware):
    name = "sendfile"
    has_response = True

    def __init__(self, log: Logger):
        self.log = log

    def response(self, info: RequestInfo, resp: Response) -> None:
        path = resp.get("X-Sendfile")
        if path is None:
            return
        resp.remove("X-Sendfile")
        if resp.streaming or resp.status < 200:
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._missing(resp, path, exc.strerror or str(exc))
            return
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._missing(resp, path, "not a regular file")
            return
        resp.close()
        resp.body = b""
        resp.file = FileBody(fd, 0, st.st_size)
        if resp.get("Content-Type") is None:
            resp.set("Content-Type", content_type(path))

    def _missing(self, resp: Response, path: str, why: str) -> None:
        self.log.warn("X-Sendfile file cannot be sent", path=path, error=why)
        resp.status = 404
        resp.body = b"404 Not Found\n"
        resp.set("Content-Type", "text/plain; charset=utf-8")
