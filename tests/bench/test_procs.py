"""Process-tree accounting and cleanup: CPU of reaped children, stopping whole trees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from fastrr.benchmark import procs

# A parent that starts a CPU-burning child, waits for it (so its CPU moves to the
# parent's cutime), then starts a grandchild in its own process group (as fastrr
# does with its workers) and sleeps.
TREE = textwrap.dedent("""
    import os, subprocess, sys, time
    burn = "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn])
    sys.stdout.write("burnt\\n"); sys.stdout.flush()
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], process_group=0)
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    time.sleep(60)
""")


def _start_tree() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"burnt\n"
    assert proc.stdout.readline() == b"ready\n"
    return proc


def _wait_children(pid: int, n: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        kids = procs.descendants(pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.02)
    raise AssertionError("children did not start")


def test_tree_cpu_counts_reaped_children_once():
    proc = _start_tree()
    try:
        _wait_children(proc.pid, 1)
        total = procs.tree_cpu_seconds([proc.pid])
        alone = procs.process_cpu_seconds(proc.pid)
        assert total >= 0.25, total          # the burner's 0.3 s, through the parent's cutime
        assert alone < total - 0.2           # the process alone does not include it
        assert total < 5
    finally:
        procs.stop_tree(proc, timeout=5)


def test_stop_tree_reaches_children_in_other_process_groups():
    proc = _start_tree()
    kids = _wait_children(proc.pid, 1)
    assert any(os.getpgid(k.pid) != os.getpgid(proc.pid) for k in kids)
    procs.stop_tree(proc, timeout=5)
    assert proc.poll() is not None
    for kid in kids:
        assert not procs._alive(kid)


def test_stop_tree_kills_what_ignores_sigterm():
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('x', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"x\n"
    t0 = time.monotonic()
    procs.stop_tree(proc, timeout=0.5)
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - t0 < 5


def test_reaper_stops_everything_on_an_exception(tmp_path):
    started = []
    with pytest.raises(RuntimeError), procs.Reaper() as reaper:
        for _ in range(2):
            started.append(reaper.add(procs.spawn([sys.executable, "-c", "import time; time.sleep(60)"],
                                                  log=tmp_path / "out.log")))
        raise RuntimeError("boom")
    assert all(p.poll() is not None for p in started)


def test_reaper_turns_sigterm_into_an_orderly_stop():
    with pytest.raises(KeyboardInterrupt), procs.Reaper() as reaper:
        child = reaper.add(procs.spawn([sys.executable, "-c", "import time; time.sleep(60)"]))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted by the handler
    assert child.poll() is not None
    assert signal.getsignal(signal.SIGTERM) is not procs._raise_interrupt


def test_memory_sampler_and_context_switches():
    proc = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(20 << 20); time.sleep(60)"],
                            start_new_session=True)
    try:
        time.sleep(0.3)
        with procs.MemorySampler([proc.pid], interval=0.05) as mem:
            time.sleep(0.2)
        assert mem.peak.rss > 20 << 20
        assert mem.peak.samples >= 2
        # The measured run's sampler: no thread, RSS on entry and on exit only.
        with procs.MemorySampler([proc.pid], interval=None, pss=False) as quiet:
            time.sleep(0.1)
        assert quiet.peak.samples == 2 and quiet.peak.rss > 20 << 20 and quiet.peak.pss == 0
        assert procs.context_switches([proc.pid]) >= 1
    finally:
        procs.stop_tree(proc, timeout=5)


def test_system_busy_seconds_parses_proc_stat():
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    line = f"cpu  {tick} {tick} {tick} 999999 50 7 9 {tick} 0 0"
    assert procs.system_busy_seconds(line) == pytest.approx(4.0)
    assert procs.system_busy_seconds() > 0


def test_cpu_busy_seconds_reads_only_the_given_cpus():
    tick = os.sysconf("SC_CLK_TCK")
    text = (f"cpu  {9 * tick} 0 0 0 0 0 0 0 0 0\n"
            f"cpu0 {2 * tick} 0 {tick} 50 0 0 7 0 0 0\n"
            f"cpu1 {5 * tick} 0 0 50 0 0 0 {tick} 0 0\n"
            "intr 123\n")
    assert procs.cpu_busy_seconds([0], text) == pytest.approx(3.0)
    assert procs.cpu_busy_seconds([1], text) == pytest.approx(6.0)
    assert procs.cpu_busy_seconds([0, 1], text) == pytest.approx(9.0)
    assert procs.cpu_busy_seconds([7], text) == 0.0
