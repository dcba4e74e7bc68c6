"""The `fastrr` command line: RoadRunner's flags (`-c`, `-w`, `-o`, `--dotenv`)
accepted both before the command (as `rr -c .rr.yaml serve`) and after it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from fastrr import RR_COMPAT_VERSION, __version__

EXIT_CONFIG = 1


def _config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("-c", "--config", "config", default=None, help="Config file (default .rr.yaml)."),
        click.option("-w", "--WorkDir", "--workdir", "workdir", default=None,
                     help="Working directory (default: the config file's directory)."),
        click.option("-o", "--override", "overrides", multiple=True,
                     help="Override a config key: -o http.pool.num_workers=4 (repeatable)."),
        click.option("--dotenv", default=None, help="Load environment variables from this .env file first."),
        click.option("-s", "--silent", is_flag=True, default=False, help="Less output."),
    ]):
        fn = decorator(fn)
    return fn


def _merge(ctx: click.Context, **local: Any) -> dict[str, Any]:
    parent = ctx.find_root().params
    merged = {}
    for key in ("config", "workdir", "dotenv", "silent"):
        merged[key] = local.get(key) or parent.get(key)
    merged["overrides"] = list(parent.get("overrides") or ()) + list(local.get("overrides") or ())
    return merged


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from fastrr import rrcompat

    if rrcompat.active():
        click.echo(rrcompat.version_line())
    else:
        click.echo(f"fastrr version {__version__} (RoadRunner protocol {RR_COMPAT_VERSION})")
    ctx.exit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_config_options
@click.option("-v", "--version", is_flag=True, is_eager=True, expose_value=False, callback=_print_version,
              help="Print the version and exit.")
def main(**_: Any) -> None:
    """fastrr: a RoadRunner-compatible application server for long-lived PHP workers."""


def _parse_workers(value: str | None) -> int | None:
    if value is None:
        return None
    if value == "auto":
        return 0
    if not value.isdigit():
        raise click.BadParameter("expected auto or a number of workers", param_hint="--workers")
    return int(value)


@main.command()
@_config_options
@click.option("--workers", default=None, help="Number of PHP workers: auto (CPU count) or N (0 = auto).")
@click.option("-p", "--pid", "pidfile", is_flag=True, default=False, help="Write .pid in the working directory.")
@click.pass_context
def serve(ctx: click.Context, workers: str | None, pidfile: bool, **local: Any) -> None:
    """Start the HTTP server and its PHP worker pool."""
    from fastrr.config import ConfigError, load_config
    from fastrr.log import configure

    opts = _merge(ctx, **local)
    try:
        config = load_config(opts["config"] or ".rr.yaml", opts["workdir"], opts["overrides"], opts["dotenv"],
                             _parse_workers(workers))
        if config.http is None:
            raise ConfigError("http", "required section is missing: set http.address (e.g. 127.0.0.1:8080)")
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    logs = config.logs
    log = configure("warn" if logs.level == "warning" else logs.level,
                    "raw" if logs.mode in ("off", "none") else logs.mode, logs.encoding, logs.output)
    from fastrr import rrcompat

    if rrcompat.active() and not opts["silent"]:
        click.echo(rrcompat.started_line())
    for warning in config.warnings:
        log.warn(f"config: {warning}")
    from fastrr.server.arbiter import Arbiter

    arbiter = Arbiter(config, log, os.path.join(config.workdir, ".pid") if pidfile else None)
    sys.exit(_run(arbiter.run()))


def _run(coro: Any) -> int:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return int(runner.run(coro))
    except ImportError:
        return int(asyncio.run(coro))


@main.command("rr-shim")
@click.argument("directory", type=click.Path(file_okay=False))
def rr_shim(directory: str) -> None:
    """Write DIRECTORY/rr, a wrapper through which fastrr behaves as RoadRunner's CLI
    (for tools such as Laravel Octane that start `rr`)."""
    from fastrr import rrcompat

    click.echo(rrcompat.write_shim(directory))
