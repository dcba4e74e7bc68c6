"""The reload plugin against a real `fastrr serve` and real PHP workers: an edit reaches
the clients with no failed request, bursts reset once, ignored files reset nothing."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.reload.conftest import Client, ReloadFactory, write_version
from tests.status.test_notify import NotifySocket, reloading_then_ready


def http_watch(app: object, **extra: object) -> dict[str, object]:
    return {"dirs": [str(app)], "recursive": True, **extra}


@pytest.mark.parametrize("engine", ["python", "c"])
def test_edit_reaches_clients_without_a_failed_request(reload_app: ReloadFactory, engine: str) -> None:
    (reload_app.app / "boot_ms").write_text("150")  # replacements take a while: requests meet the reset
    srv = reload_app.start({"interval": "300ms", "services": {"http": http_watch(reload_app.app)}}, engine=engine)
    client = Client(srv.server.port, path="/?ms=5").start()
    try:
        deadline = time.monotonic() + 5
        while client.versions().count("v1") < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        write_version(srv.app, "v2")
        srv.wait_for("workers reset")
        deadline = time.monotonic() + 5
        seen = len(client.versions())
        while len(client.versions()) < seen + 30 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.stop()
    versions = client.versions()
    assert client.errors == [], client.errors[:5]
    assert client.sent == client.ok == len(versions)
    assert versions[:30] == ["v1"] * 30
    assert versions[-30:] == ["v2"] * 30, versions[-40:]
    old = {a["pid"] for a in client.answers if a["version"] == "v1"}
    new = {a["pid"] for a in client.answers if a["version"] == "v2"}
    assert old and new and not old & new
    assert srv.get()["version"] == "v2"
    out = srv.server.output()
    changed = srv.app / "version.php"
    assert f'"changed": 1, "files": ["{changed}"]' in out
    assert srv.resets() == 1
    assert "ERROR" not in out


def test_reset_is_told_to_systemd(reload_app: ReloadFactory) -> None:
    """Under a notify-reload unit a file-change reset says RELOADING=1 ... READY=1, as SIGHUP's does."""
    notify = NotifySocket(f"@fastrr-reload-test-{uuid.uuid4()}")
    try:
        srv = reload_app.start({"interval": "100ms", "services": {"http": http_watch(reload_app.app)}},
                               env={"NOTIFY_SOCKET": notify.address})
        assert notify.wait(1) == ["READY=1"]
        write_version(srv.app, "v2")
        srv.wait_for("workers reset")
        reloading_then_ready(notify.wait(3)[1:])
        assert srv.get()["version"] == "v2"
    finally:
        notify.close()


def test_burst_of_500_files_resets_once(reload_app: ReloadFactory) -> None:
    src = reload_app.app / "src"
    src.mkdir()
    for i in range(500):
        (src / f"Model{i}.php").write_text(f"<?php // {i}\n")
    srv = reload_app.start({"interval": "1s", "services": {"http": http_watch(reload_app.app)}})
    before = srv.server.wait_workers(2)
    for i in range(500):  # what a `git checkout` does to a tree
        (src / f"Model{i}.php").write_text(f"<?php // {i} changed\n")
    srv.wait_for("workers reset")
    time.sleep(1.5)  # longer than the interval: a second reset would have begun
    assert srv.resets() == 1
    assert '"changed": 500' in srv.server.output()
    after = srv.server.wait_workers(2)
    assert not before & after


def test_change_during_a_reset_resets_once_more(reload_app: ReloadFactory) -> None:
    (reload_app.app / "boot_ms").write_text("800")
    srv = reload_app.start({"interval": "300ms", "services": {"http": http_watch(reload_app.app)}}, workers=1)
    write_version(srv.app, "v2")
    srv.wait_for("pool\tresetting workers")
    for version in ("v3", "v4", "v5"):  # while the new worker boots
        write_version(srv.app, version)
        time.sleep(0.05)
    assert srv.count("workers reset") == 0, "the reset ended before the edits: boot_ms too short?"
    srv.wait_for("workers reset", times=2)
    time.sleep(0.8)  # longer than the interval
    assert srv.resets() == 2
    assert srv.get()["version"] == "v5"


def test_ignored_and_unmatched_files_reset_nothing(reload_app: ReloadFactory) -> None:
    app = reload_app.app
    for sub in ("vendor/lib", "cache", "src"):
        (app / sub).mkdir(parents=True)
    srv = reload_app.start({"interval": "300ms", "patterns": [".php"], "services": {"http": http_watch(
        app, ignore=[str(app / "vendor"), str(app / "cache" / "compiled.php")])}})
    before = srv.server.wait_workers(2)
    assert srv.inotify_fds() == 1
    (app / "vendor" / "autoload.php").write_text("<?php\n")
    (app / "vendor" / "lib" / "Deep.php").write_text("<?php\n")
    (app / "cache" / "compiled.php").write_text("<?php\n")
    (app / "notes.txt").write_text("not php\n")
    (app / "src" / "style.css").write_text("body {}\n")
    (app / "boot_ms").write_text("0")
    time.sleep(1.0)
    assert srv.resets() == 0, srv.server.output()[-2000:]
    assert srv.server.worker_pids() == before
    # The watcher was alive all along: a matching file still resets.
    (app / "src" / "Controller.php").write_text("<?php\n")
    srv.wait_for("workers reset")
    assert srv.resets() == 1
    assert "src/Controller.php" in srv.server.output()


def test_not_recursive_watches_the_top_directory_only(reload_app: ReloadFactory) -> None:
    app = reload_app.app
    (app / "lib").mkdir()
    srv = reload_app.start({"interval": "300ms", "services": {"http": {"dirs": [str(app)], "patterns": ["*.tpl"]}}})
    (app / "lib" / "Deep.php").write_text("<?php\n")
    (app / "lib" / "page.tpl").write_text("deep\n")
    time.sleep(1.0)
    assert srv.resets() == 0, srv.server.output()[-2000:]
    (app / "page.tpl").write_text("top\n")  # a glob pattern, added to the global ".php"
    srv.wait_for("workers reset")
    assert srv.resets() == 1


def test_syntax_error_keeps_the_old_workers_until_fixed(reload_app: ReloadFactory) -> None:
    srv = reload_app.start({"interval": "300ms", "services": {"http": http_watch(reload_app.app)}}, workers=1)
    (srv.app / "version.php").write_text("<?php\nreturn 'v2'\n")  # no semicolon: a PHP parse error
    srv.wait_for("reset failed: the old workers keep serving", timeout=15)
    assert srv.get()["version"] == "v1"
    write_version(srv.app, "v2")
    srv.wait_for("workers reset")
    assert srv.get()["version"] == "v2"
    assert srv.server.proc.poll() is None


def test_stop_during_a_reset_is_clean(reload_app: ReloadFactory) -> None:
    (reload_app.app / "boot_ms").write_text("1500")
    srv = reload_app.start({"interval": "300ms", "services": {"http": http_watch(reload_app.app)}}, workers=1)
    write_version(srv.app, "v2")
    srv.wait_for("pool\tresetting workers")
    assert srv.server.stop(timeout=15) == 0
    out = srv.server.output()
    assert "fastrr stopped" in out and "Traceback" not in out and "reset failed" not in out, out[-3000:]


def test_polling_watcher(reload_app: ReloadFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # For mounts that send no inotify events (watchfiles' own switch, passed through).
    monkeypatch.setenv("WATCHFILES_FORCE_POLLING", "1")
    srv = reload_app.start({"interval": "300ms", "services": {"http": http_watch(reload_app.app)}}, workers=1)
    assert srv.inotify_fds() == 0
    # The poller's first scan (when, depends on the machine's load) is what later scans compare
    # with: save again until one is seen.
    deadline = time.monotonic() + 10
    while srv.count("workers reset") == 0 and time.monotonic() < deadline:
        write_version(srv.app, f"v2 {time.monotonic()}")
        time.sleep(0.5)
    srv.wait_for("workers reset")
    assert srv.get()["version"].startswith("v2")
