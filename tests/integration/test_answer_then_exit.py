"""A worker that answers and exits at once (a PHP-side request limit, a memory guard,
exit() after respond()) may be handed the next request before its exit is seen. That
request never reached PHP - every byte of it is still in the pipe - so fastrr sends it
to another worker instead of answering 502. A request the worker did read is never
run twice: its client gets the 502."""

from __future__ import annotations

import concurrent.futures
import re

import httpx


def _runs(log) -> list[str]:
    return log.read_text().split("\n")[:-1] if log.exists() else []


def test_requests_after_an_answer_then_exit_are_sent_to_another_worker(fastrr, tmp_path):
    log = tmp_path / "runs.log"
    server = fastrr.start(workers=2, script="answer_then_exit.php",
                          env={"ANSWERS": "1", "RUN_LOG": str(log)}, timeout=30)
    sent = 60

    def one(i: int) -> int:
        return httpx.get(server.url(f"/r{i}"), timeout=30).status_code

    # Four clients at once, each on new connections: every answer is followed by its
    # worker's exit, so the pool keeps giving requests to workers that are leaving.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(one, range(sent)))
    runs = _runs(log)
    uris = [line.split(" ", 1)[1] for line in runs]
    print(f"sent {sent}, answered 200: {codes.count(200)}, ran in PHP: {len(runs)}")
    assert codes == [200] * sent
    assert sorted(uris) == sorted(f"/r{i}" for i in range(sent))  # each ran exactly once
    # each worker served exactly one request, then was replaced
    assert len({line.split(" ", 1)[0] for line in runs}) == sent


def test_keep_alive_requests_after_an_answer_then_exit(fastrr, tmp_path):
    log = tmp_path / "runs.log"
    server = fastrr.start(workers=1, script="answer_then_exit.php",
                          env={"ANSWERS": "1", "RUN_LOG": str(log)}, timeout=30)
    with httpx.Client(timeout=30) as client:
        codes = [client.get(server.url(f"/k{i}")).status_code for i in range(30)]
    assert codes == [200] * 30
    assert sorted(line.split(" ", 1)[1] for line in _runs(log)) == sorted(f"/k{i}" for i in range(30))


def test_a_request_the_worker_read_is_not_run_again(fastrr, tmp_path):
    log = tmp_path / "runs.log"
    server = fastrr.start(workers=2, script="answer_then_exit.php",
                          env={"ANSWERS": "1000", "RUN_LOG": str(log)}, timeout=30)
    r = httpx.get(server.url("/read-and-die"), timeout=30)
    assert r.status_code == 502
    assert [line.split(" ", 1)[1] for line in _runs(log)] == ["/read-and-die"]
    # the pool goes on: the next request is served by a worker
    assert httpx.get(server.url("/after"), timeout=30).status_code == 200
    assert re.search(r"request (failed|lost)|worker exited", server.output())
