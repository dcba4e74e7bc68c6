"""Bad `status:` sections: each fails start-up with one line naming the key."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, free_port, worker_cmd
from tests.status.conftest import StatusFactory, status_config


def serve(tmp_path: Path, section: Any) -> subprocess.CompletedProcess[str]:
    cfg = {"version": "3", "server": {"command": worker_cmd()},
           "http": {"address": f"127.0.0.1:{free_port()}", "pool": {"num_workers": 1}}, "status": section}
    path = tmp_path / ".rr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(path)], capture_output=True, text=True,
                          timeout=30, cwd=str(ROOT))


@pytest.mark.parametrize("section,error", [
    (None, "status.address: required key is missing"),
    ({"unavailable_status_code": 503}, "status.address: required key is missing"),
    ({"address": "tcp://127.0.0.1:2114"}, "status.address: expected host:port without a scheme"),
    ({"address": "127.0.0.1"}, "status.address: expected host:port"),
    ({"address": "127.0.0.1:99999"}, "status.address: expected host:port"),
    ({"address": "127.0.0.1:2114", "unavailable_status_code": 700},
     "status.unavailable_status_code: expected an HTTP status code between 100 and 599"),
    ({"address": "127.0.0.1:2114", "unavailable_status_code": "soon"},
     "status.unavailable_status_code: expected an integer"),
    ({"address": "127.0.0.1:2114", "check_timeout": -1}, "status.check_timeout: expected a non-negative duration"),
    ({"address": "127.0.0.1:2114", "check_timeout": "often"}, "status.check_timeout: expected a duration"),
])
def test_config_errors(tmp_path: Path, section: Any, error: str) -> None:
    out = serve(tmp_path, section)
    assert out.returncode == 1 and error in out.stderr, out.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = serve(tmp_path, {"address": f"127.0.0.1:{port}"})
    assert out.returncode == 1
    assert f"error: status.address: cannot listen on 127.0.0.1:{port}: Address already in use" in out.stderr
    assert "fastrr started" not in out.stderr + out.stdout


def test_unknown_key_is_a_warning_and_defaults_apply(status: StatusFactory) -> None:
    st = status.start(status_config(status={"unavailable_status_code": 0, "check_timeout": 0, "colour": "red"}))
    out = st.server.output()
    assert "status.colour: unknown key, ignored" in out
    assert '"unavailable_status_code": 503' in out
    assert st.probe("/health").status == 200
