"""PLACEHOLDER: the driver's keys (being written)."""

from __future__ import annotations

from typing import Any

from fastrr.config.section import Section
from fastrr.jobs.config import PipelineConfig, Reader

GLOBAL_SECTION: str | None = None
OPTIONS: dict[str, tuple[Reader, Any]] = {}
DECLARE_DEFAULTS: dict[str, Any] = {}


def parse_global(section: Section) -> Any:
    return None


def check(pipe: PipelineConfig, path: str) -> None:
    pass
