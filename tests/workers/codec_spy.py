"""A pipes-relay wiretap for tests: runs a worker command between fastrr and
the real worker and appends one line per goridge frame to a log file:

    <direction> <flags> <byte10> <options...>

direction is "in" (fastrr -> worker) or "out" (worker -> fastrr); numbers
are decimal. The bytes are passed on unchanged.

    python codec_spy.py LOG_FILE php app.php
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading


def pump(src: int, dst: int, log, direction: str, lock: threading.Lock, close) -> None:
    """Copy src to dst, parsing frame headers on the way; close() at the end."""
    buf = bytearray()
    need = 12  # bytes until the next header is complete
    skip = 0  # payload bytes still to pass over
    while True:
        try:
            data = os.read(src, 65536)
        except OSError:
            data = b""
        if not data:
            break
        # log first, forward second: a frame's line is in the log before the
        # other side can answer it, so readers never see a reply without it
        view = memoryview(data)
        while view:
            if skip:
                n = min(skip, len(view))
                skip -= n
                view = view[n:]
                continue
            take = min(need - len(buf), len(view))
            buf += view[:take]
            view = view[take:]
            if len(buf) < need:
                continue
            hl = buf[0] & 0x0F
            full = hl * 4
            if len(buf) < full:
                need = full
                continue
            opts = [int.from_bytes(buf[12 + 4 * i:16 + 4 * i], "little") for i in range(hl - 3)]
            with lock:
                log.write(f"{direction} {buf[1]} {buf[10]} {' '.join(map(str, opts))}".rstrip() + "\n")
                log.flush()
            skip = int.from_bytes(buf[2:6], "little")
            buf.clear()
            need = 12
        try:
            out = memoryview(data)
            while out:
                out = out[os.write(dst, out):]
        except OSError:
            break
    try:
        close()
    except OSError:
        pass


def main() -> int:
    log_path, cmd = sys.argv[1], sys.argv[2:]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    lock = threading.Lock()
    log = open(log_path, "a", encoding="ascii")  # noqa: SIM115 - the stdin thread may outlive main
    t = threading.Thread(target=pump, daemon=True,
                         args=(sys.stdin.fileno(), proc.stdin.fileno(), log, "in", lock, proc.stdin.close))
    t.start()
    pump(proc.stdout.fileno(), sys.stdout.fileno(), log, "out", lock, sys.stdout.close)
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
