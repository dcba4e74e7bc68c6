"""Reading py-spy's collapsed stacks and perf's report."""

from __future__ import annotations

import pytest

from fastrr.benchmark import profile

COLLAPSED = """\
<module> (fastrr/__main__.py:4);run (loop.c:1);_readable (fastrr/pool/relay.py:50);read (libc.so.6) 30
<module> (fastrr/__main__.py:4);run (loop.c:1);on_worker_frame (fastrr/http/connection.py:318);write (libc.so.6) 50
<module> (fastrr/__main__.py:4);run (loop.c:1);epoll_pwait (libc.so.6) 100
<module> (fastrr/__main__.py:4);run (loop.c:1);on_worker_frame (fastrr/http/connection.py:318) 20
garbage line
"""


def test_collapsed_stacks_own_and_inclusive_time_without_idle():
    own, incl, busy, idle = profile.parse_collapsed(COLLAPSED)
    assert (busy, idle) == (100, 100)
    assert own["write (libc.so.6)"] == 50 and own["read (libc.so.6)"] == 30
    assert own["on_worker_frame (connection.py:318)"] == 20
    assert incl["on_worker_frame (connection.py:318)"] == 70
    assert incl["<module> (__main__.py:4)"] == 100     # counted once per sample


def test_idle_leaves():
    assert profile.is_idle("epoll_wait (libc.so.6)") and profile.is_idle("epoll_pwait")
    assert not profile.is_idle("write (libc.so.6)")


PERF = """\
# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 5K of event 'cpu-clock'
# Overhead  Shared Object
# ........  ..........................
#
    61.20%  [kernel.kallsyms]
    20.05%  libpython3.11.so.1.0
     5.50%  _core.cpython-311-x86_64-linux-gnu.so

"""


def test_perf_report_lines():
    rows = profile.parse_perf_report(PERF)
    assert rows[0] == (61.2, "[kernel.kallsyms]")
    assert [n for _, n in rows] == ["[kernel.kallsyms]", "libpython3.11.so.1.0",
                                    "_core.cpython-311-x86_64-linux-gnu.so"]
    assert sum(p for p, _ in rows) == pytest.approx(86.75)
