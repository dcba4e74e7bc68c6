"""Engine.set_active_limit (http.pool.active_limit): at most N workers run a
request at once; requests beyond it queue, the next one goes to whichever
worker finishes, and raising or lifting the limit dispatches the queue at once."""

from __future__ import annotations

import pytest

from tests.core.test_engine import GET, Harness, read_response


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    harness.close()


def test_limit_one_runs_one_request_at_a_time_on_any_free_worker(h):
    a, b = h.worker(1001), h.worker(1002)
    h.engine.set_active_limit(1)
    clients = [h.client(GET) for _ in range(3)]
    # one of the two free workers gets the first request, the other nothing
    first, other = (a, b) if not a.idle(0.3) else (b, a)
    assert other.idle(0.3)
    first.request()
    assert h.engine.stats()["queued"] == 2
    first.respond(200, b"1")
    # the worker that just finished takes the next one (LIFO keeps the hot one busy)
    first.request()
    assert other.idle(0.2)
    first.respond(200, b"2")
    first.request()
    first.respond(200, b"3")
    assert sorted(read_response(c)[1] for c in clients) == [b"1", b"2", b"3"]
    for c in clients:
        c.close()


def test_lifting_the_limit_dispatches_the_queue_at_once(h):
    workers = [h.worker(1000 + i) for i in range(3)]
    h.engine.set_active_limit(1)
    clients = [h.client(GET) for _ in range(3)]
    busy = next(w for w in workers if not w.idle(0.3))
    busy.request()
    assert h.engine.stats()["queued"] == 2
    h.engine.set_active_limit(2)   # one more may run
    waiting = [w for w in workers if w is not busy]
    started = [w for w in waiting if not w.idle(0.3)]
    assert len(started) == 1 and h.engine.stats()["queued"] == 1
    h.engine.set_active_limit(0)   # no limit: the last one starts too
    last = next(w for w in waiting if w is not started[0])
    last.request()
    assert h.engine.stats()["queued"] == 0
    for i, w in enumerate((busy, started[0], last)):
        if w is started[0]:
            w.request()
        w.respond(200, str(i).encode())
    assert sorted(read_response(c)[1] for c in clients) == [b"0", b"1", b"2"]
    for c in clients:
        c.close()


def test_a_lost_worker_frees_its_slot(h):
    a, b = h.worker(1001), h.worker(1002)
    h.engine.set_active_limit(1)
    c1, c2 = h.client(GET), h.client(GET)
    first, other = (a, b) if not a.idle(0.3) else (b, a)
    first.request()
    h.engine.remove_worker(first.pid, "gone")   # the process died with the request
    assert read_response(c1)[0].startswith(b"HTTP/1.1 502")
    other.request()                               # the queued request was not stranded
    other.respond(200, b"ok")
    assert read_response(c2)[1] == b"ok"
    c1.close()
    c2.close()


def test_negative_limit_is_refused(h):
    with pytest.raises(ValueError, match=">= 0"):
        h.engine.set_active_limit(-1)
