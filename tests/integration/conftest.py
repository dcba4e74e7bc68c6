"""Runs the end-to-end suites against the chosen HTTP front(s).

`pytest --engine c` (or FASTRR_ENGINE=c) runs them against the C engine,
`--engine both` runs every test against both fronts (ids get [python] / [c]).
The choice reaches fastrr through FASTRR_ENGINE, the default of `http.engine`,
so servers started by the `fastrr` fixture and by tests that run the CLI
themselves use it alike; a test that sets `http.engine` in its config wins.
"""

from __future__ import annotations

import pytest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fastrr_engine" in metafunc.fixturenames and metafunc.config.getoption("engine") == "both":
        metafunc.parametrize("fastrr_engine", ["python", "c"], indirect=True)


@pytest.fixture(autouse=True)
def fastrr_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    engine = getattr(request, "param", None) or request.config.getoption("engine")
    monkeypatch.setenv("FASTRR_ENGINE", engine)
    return engine
