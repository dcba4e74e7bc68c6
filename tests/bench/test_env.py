"""Debian packages (install when root, exact command otherwise) and the CPU layout."""

from __future__ import annotations

import pytest

from fastrr.benchmark import env

PACKAGES = {"nginx": "nginx", "php-slim": "/usr/share/php/Slim/App.php"}


def test_missing_packages_uses_dpkg_answer(monkeypatch):
    monkeypatch.setattr(env.shutil, "which", lambda name: "/usr/bin/" + name)
    assert env.missing_packages(PACKAGES, installed=lambda p: p == "nginx") == ["php-slim"]
    assert env.missing_packages(PACKAGES, installed=lambda p: True) == []


def test_not_root_prints_the_exact_command(monkeypatch):
    monkeypatch.setattr(env.shutil, "which", lambda name: "/usr/bin/" + name)
    with pytest.raises(env.SetupError) as err:
        env.ensure_packages(print, PACKAGES, installed=lambda p: False, root=False)
    text = str(err.value)
    assert "sudo apt-get update -qq && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq " \
           "nginx php-slim" in text


def test_root_installs_with_apt_get(monkeypatch):
    monkeypatch.setattr(env.shutil, "which", lambda name: "/usr/bin/" + name)
    state = {"installed": False}
    ran: list[list[str]] = []

    def run(argv: list[str]) -> int:
        ran.append(argv)
        if "install" in argv:
            state["installed"] = True
        return 0

    said: list[str] = []
    got = env.ensure_packages(said.append, PACKAGES, installed=lambda p: state["installed"], run=run, root=True)
    assert got == ["nginx", "php-slim"]
    assert ran[0] == ["apt-get", "update", "-qq"]
    assert ran[1][-2:] == ["nginx", "php-slim"] and "install" in ran[1]
    assert "Installing Debian packages" in said[0]


def test_failed_install_is_an_error(monkeypatch):
    monkeypatch.setattr(env.shutil, "which", lambda name: "/usr/bin/" + name)
    with pytest.raises(env.SetupError, match="command failed"):
        env.ensure_packages(print, PACKAGES, installed=lambda p: False, run=lambda argv: 100, root=True)


def test_nothing_missing_runs_nothing():
    assert env.ensure_packages(print, PACKAGES, installed=lambda p: True, run=lambda argv: 1 / 0, root=True) == []


def test_layouts():
    pinned = env.layout_for("pinned", cpus=[2, 3], have_taskset=True)
    assert (pinned.mode, pinned.server_cpus, pinned.load_cpus) == ("pinned", "2", "3")
    assert pinned.server_prefix == ["taskset", "-c", "2"] and pinned.load_prefix == ["taskset", "-c", "3"]
    assert env.layout_for("pinned", cpus=[0], have_taskset=True).mode == "unpinned"
    assert env.layout_for("pinned", cpus=[0, 1], have_taskset=False).mode == "unpinned"
    free = env.layout_for("unpinned", cpus=[0, 1], have_taskset=True)
    assert free.server_prefix == [] and free.load_prefix == [] and "unpinned" in free.describe()


def test_snapshot_and_fingerprint(tmp_path):
    from fastrr.benchmark.apps import APPS, ROOT

    code = env.snapshot_code(ROOT, tmp_path / "code")
    assert (code / "fastrr" / "__init__.py").is_file() and (code / "php" / "autoload.php").is_file()
    assert not list(code.rglob("__pycache__"))
    first = env.code_fingerprint(code)
    assert first == env.code_fingerprint(code)
    slim = APPS["slim"].rebased(code)
    assert slim.worker_script.is_file() and slim.worker_script.is_relative_to(code)
    slim.worker_script.write_text(slim.worker_script.read_text() + "\n// changed\n")
    assert env.code_fingerprint(code) != first
