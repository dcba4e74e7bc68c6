"""fastrr as a PHP user gets it from `pip install`: the wheel carries the PHP library, the demo
and the benchmark apps (fastrr/_tree, setup.py), `fastrr php-path` says where the library is,
and a PHP worker that requires the installed library serves a request through the installed
fastrr, run from a directory that is not the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The wheel built from this checkout, installed into a directory of its own; the
    environment that imports fastrr from there (its dependencies from this venv)."""
    tmp = tmp_path_factory.mktemp("wheel")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp / "dist")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    [wheel] = (tmp / "dist").glob("fastrr-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for member in ("fastrr/_tree/php/autoload.php", "fastrr/_tree/php/src/Worker.php",
                   "fastrr/_tree/php/demo/worker.php", "fastrr/_tree/bench/apps/slim/worker.php",
                   "fastrr/_tree/bench/floor.c", "fastrr/_tree/wrk-scripts/hello.lua"):
        assert member in names, member
    assert not [n for n in names if n.startswith("fastrr/_tree/php/tests/")]
    site = tmp / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                          str(wheel)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    run_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])}
    return site, run_env


def _py(env: dict[str, str], cwd: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_installed_fastrr_knows_its_php_library_and_apps(installed: tuple[Path, dict[str, str]],
                                                         tmp_path: Path) -> None:
    site, env = installed
    assert _py(env, tmp_path, "-c", "import fastrr; print(fastrr.__file__)").startswith(str(site))
    assert _py(env, tmp_path, "-m", "fastrr", "php-path") == str(site / "fastrr" / "_tree" / "php")
    autoload = _py(env, tmp_path, "-m", "fastrr", "php-path", "--autoload")
    assert Path(autoload).is_file()
    where = _py(env, tmp_path, "-c", "from fastrr.benchmark import apps, runner; "
                                     "print(apps.APPS_DIR.is_dir(), (apps.ROOT / 'bench' / 'floor.c').is_file(), "
                                     "runner.RESULTS_DIR)")
    assert where == f"True True {tmp_path / 'fastrr-bench-results'}"  # never inside site-packages


def test_a_worker_on_the_installed_library_serves(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    site, env = installed
    autoload = site / "fastrr" / "_tree" / "php" / "autoload.php"
    (tmp_path / "worker.php").write_text(
        "<?php\nrequire $argv[1];\n"
        "$worker = new Fastrr\\Http\\HttpWorker(Fastrr\\Worker::create());\n"
        "while ($req = $worker->waitRequest()) { $worker->respond(200, 'installed ' . PHP_VERSION_ID); }\n")
    port = free_port()
    (tmp_path / ".rr.yaml").write_text(
        f'version: "3"\nserver: {{command: "php worker.php {autoload}"}}\n'
        f"http: {{address: 127.0.0.1:{port}, pool: {{num_workers: 1}}}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "fastrr", "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.text.startswith("installed ")
    finally:
        proc.terminate()
        proc.wait(30)


def test_composer_json_is_a_package_for_a_path_repository() -> None:
    """php/composer.json: what a Composer path repository in an app reads (name, PSR-4, the bin entry)."""
    import json

    data = json.loads((ROOT / "php" / "composer.json").read_text())
    assert data["name"] == "fastrr/fastrr-php" and data["type"] == "library"
    assert data["autoload"]["psr-4"] == {"Fastrr\\": "src/"}
    for script in data["bin"]:
        assert (ROOT / "php" / script).is_file(), script
    for cls in ("Laravel/Worker.php", "Symfony/Runtime.php", "GRPC/Server.php", "Http/PSR7Worker.php"):
        assert (ROOT / "php" / "src" / cls).is_file(), cls
