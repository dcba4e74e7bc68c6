"""Bad `reload:` sections: each fails start-up with one line naming the key; warnings
(a plugin that is not running, an unknown key) leave the server serving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastrr.reload.config import WatchConfig
from tests.conftest import ROOT, free_port, worker_cmd
from tests.reload.conftest import ReloadFactory

HTTP = {"dirs": ["."], "recursive": True}


def serve(tmp_path: Path, section: Any) -> subprocess.CompletedProcess[str]:
    cfg = {"version": "3", "server": {"command": worker_cmd()},
           "http": {"address": f"127.0.0.1:{free_port()}", "pool": {"num_workers": 1}}, "reload": section}
    path = tmp_path / ".rr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(path)], capture_output=True, text=True,
                          timeout=30, cwd=str(ROOT))


@pytest.mark.parametrize("section,error", [
    ({"interval": "soon", "services": {"http": HTTP}}, "reload.interval: expected a duration like 60s"),
    ({"interval": -1, "services": {"http": HTTP}}, "reload.interval: expected a non-negative duration"),
    ({"patterns": {"php": 1}, "services": {"http": HTTP}}, "reload.patterns: expected a list of strings"),
    (None, "reload.services: required key is missing"),
    ({"interval": "1s"}, "reload.services: required key is missing"),
    ({"services": ["http"]}, "reload.services: expected a mapping"),
    ({"services": {}}, "reload.services: expected at least one plugin"),
    ({"services": {"htpp": HTTP}}, "reload.services.htpp: unknown plugin 'htpp': expected one of"),
    ({"services": {"http": "yes"}}, "reload.services.http: expected a mapping"),
    ({"services": {"http": {"dirs": 5}}}, "reload.services.http.dirs: expected a list of strings"),
    ({"services": {"http": {"dirs": {"src": True}}}}, "reload.services.http.dirs: expected a list of strings"),
    ({"services": {"http": {"dirs": [["src"]]}}}, "reload.services.http.dirs[0]: expected a string"),
    ({"services": {"http": {"dirs": []}}}, "reload.services.http.dirs: expected at least one directory"),
    ({"services": {"http": {"recursive": "maybe"}}}, "reload.services.http.recursive: expected true or false"),
    ({"services": {"http": {"ignore": 3}}}, "reload.services.http.ignore: expected a list of strings"),
    ({"services": {"http": {"patterns": 3}}}, "reload.services.http.patterns: expected a list of strings"),
    ({"patterns": [], "services": {"http": {"patterns": []}}}, "reload.services.http.patterns: no file patterns"),
    ({"services": {"http": HTTP}, "plugins": {"http": HTTP}}, "reload.plugins: give the plugins to reload once"),
    ({"services": {"http": {"dirs": ["no/such/dir"]}}}, "reload.services.http.dirs[0]: no such file or directory"),
])
def test_config_errors(tmp_path: Path, section: Any, error: str) -> None:
    out = serve(tmp_path, section)
    assert out.returncode == 1 and error in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_warnings_leave_the_server_serving(reload_app: ReloadFactory) -> None:
    # `plugins:` (the Go field's name) works like `services:`.
    srv = reload_app.start({"interval": "300ms", "colour": "red", "plugins": {
        "http": {"dirs": [str(reload_app.app)], "depth": 3}, "jobs": {}, "grpc": {}, "kv": {}, "lock": {}}},
        extra={"rpc": {"listen": f"tcp://127.0.0.1:{free_port()}"}})
    out = srv.server.output()
    for warning in ("reload.colour: unknown key, ignored",
                    "reload.plugins.http.depth: unknown key, ignored",
                    "reload.plugins.jobs: the jobs plugin is not running (no jobs section), nothing to reload",
                    "reload.plugins.grpc: the grpc plugin is not running (no grpc section), nothing to reload",
                    "reload.plugins.kv: the kv plugin is not running (no kv section), nothing to reload",
                    "reload.plugins.lock: the lock plugin has no workers, nothing to reload"):
        assert warning in out, out
    assert srv.get()["version"] == "v1"
    (reload_app.app / "version.php").write_text("<?php\nreturn 'v2';\n")
    srv.wait_for("workers reset")
    assert srv.get()["version"] == "v2"


def test_patterns_match_like_roadrunner(tmp_path: Path) -> None:
    watch = WatchConfig("http", "reload.services.http", dirs=[str(tmp_path)], recursive=True,
                        ignore=[str(tmp_path / "vendor"), str(tmp_path / "var" / "cache.php")],
                        patterns=[".php", "*.tw?g"])
    assert watch.wants(str(tmp_path / "a.php"))
    assert watch.wants(str(tmp_path / "a.php.bak"))  # RoadRunner: the name contains the pattern
    assert watch.wants(str(tmp_path / "views" / "page.twig"))
    assert not watch.wants(str(tmp_path / "views" / "page.twig.txt"))  # a glob matches the whole name
    assert not watch.wants(str(tmp_path / "notes.md"))
    assert not watch.wants(str(tmp_path / "vendor" / "x.php"))
    assert not watch.wants(str(tmp_path / "vendor"))
    assert watch.wants(str(tmp_path / "vendors.php"))  # a sibling of an ignored path is not ignored
    assert not watch.wants(str(tmp_path / "var" / "cache.php"))
    assert watch.wants(str(tmp_path / "var" / "other.php"))
