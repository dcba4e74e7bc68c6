"""The `rpc:` section: where the goridge RPC listener binds."""

from __future__ import annotations

from fastrr.config.section import Section, listen

DEFAULT_LISTEN = "tcp://127.0.0.1:6001"


def parse_rpc(section: Section) -> str:
    """`rpc.listen`, RoadRunner's default when the section is there without it."""
    address = section.get("listen", listen, DEFAULT_LISTEN)
    section.finish()
    return address
