"""Reading a child's output pipe line by line, for the worker and service logs."""

from __future__ import annotations

import os


def read_lines(fd: int, partial: dict[int, bytes], final: bool = False,
               max_line: int | None = None) -> tuple[list[bytes], bool]:
    """What the non-blocking pipe `fd` holds now (all of it when `final`), as complete lines;
    an unfinished line waits in `partial[fd]` (one longer than `max_line` is given out as it is).
    Returns (lines, eof): at EOF or with `final` the last partial line is included and
    partial[fd] is dropped; the caller then stops watching fd."""
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            data = b""
        if not data:
            final = True
            break
        chunks.append(data)
        if not final:
            break
    lines = (partial[fd] + b"".join(chunks)).split(b"\n")
    rest = lines.pop()
    if max_line is not None and len(rest) > max_line:
        lines.append(rest)
        rest = b""
    partial[fd] = rest
    if final:
        if rest:
            lines.append(rest)
        del partial[fd]
    return lines, final
