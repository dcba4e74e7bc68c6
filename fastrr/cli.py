"""The `fastrr` command line: RoadRunner's flags (`-c`, `-w`, `-o`, `--dotenv`)
accepted both before the command (as `rr -c .rr.yaml serve`) and after it.

serve starts the server; reset, workers and stop talk to a running one, the
first two over RPC (`rpc.listen` from the same config), stop through `.pid`.
Their output follows `rr`'s, which tools such as Laravel Octane parse."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from fastrr import RR_COMPAT_VERSION, __version__

if TYPE_CHECKING:
    from fastrr.config import Config

EXIT_CONFIG = 1
EXIT_ERROR = 1
DEFAULT_RPC = "tcp://127.0.0.1:6001"


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
    """Start the server: its plugins (http, jobs, rpc) and their PHP worker pools."""
    from fastrr.config import ConfigError, load_config
    from fastrr.log import configure_logs

    opts = _merge(ctx, **local)
    try:
        config = load_config(opts["config"] or ".rr.yaml", opts["workdir"], opts["overrides"], opts["dotenv"],
                             _parse_workers(workers))
        if not set(config.sections) - {"rpc", "lock", "app"}:
            raise ConfigError("http", "required section is missing: set http.address (e.g. 127.0.0.1:8080), "
                                      "or jobs.pipelines for a queue consumer, or kv storages")
        log = configure_logs(config.logs)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
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


@main.command("php-path")
@click.option("--autoload", is_flag=True, help="Print the path of autoload.php rather than of the directory.")
def php_path(autoload: bool) -> None:
    """Print where fastrr's PHP library is (php/ of a checkout, or the copy an installed
    fastrr carries), for `require` without Composer or a Composer path repository."""
    from fastrr import paths

    where = paths.php_dir()
    click.echo(str(where / "autoload.php" if autoload else where))


@main.command("rr-shim")
@click.argument("directory", type=click.Path(file_okay=False))
def rr_shim(directory: str) -> None:
    """Write DIRECTORY/rr, a wrapper through which fastrr behaves as RoadRunner's CLI
    (for tools such as Laravel Octane that start `rr`)."""
    from fastrr import rrcompat

    click.echo(rrcompat.write_shim(directory))


# -- commands that talk to a running server ------------------------------------------


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _rpc_target(opts: dict[str, Any]) -> tuple[str, str]:
    """The RPC address from the same config as `serve` (with -o, -w, --dotenv),
    and what to say when nothing answers there.

    Only `rpc.listen` matters here, so a config that `serve` would reject for
    other reasons still works: Laravel Octane runs `rr reset -o rpc.listen=... -s`
    next to an empty .rr.yaml, and expects silence on stderr.
    """
    from fastrr.config import ConfigError, load_config
    from fastrr.config.loader import load_raw
    from fastrr.config.schema import _listen

    base = os.path.abspath(opts["workdir"] or ".")
    path = os.path.join(base, opts["config"] or ".rr.yaml")
    try:
        return _rpc_address(load_config(path, opts["workdir"], opts["overrides"], opts["dotenv"]))
    except ConfigError as exc:
        error = exc
    if not os.path.exists(path) and any(o.strip().startswith("rpc.listen=") for o in opts["overrides"]):
        path = os.devnull  # `-o rpc.listen=...` says where: no config file needed
    try:
        raw = load_raw(path, opts["overrides"])
        section = raw.get("rpc")
        if not isinstance(section, dict):
            return DEFAULT_RPC, _NO_RPC_HINT
        listen = section.get("listen")
        return (_listen("rpc.listen", listen) if listen else DEFAULT_RPC), "is fastrr serve running?"
    except ConfigError as exc:
        error = exc
    _fail(str(error))
    raise AssertionError("unreachable")


_NO_RPC_HINT = "is fastrr serve running? the config has no rpc section, so the server does not listen for RPC"


def _rpc_address(config: Config) -> tuple[str, str]:
    if config.rpc_listen:
        return config.rpc_listen, "is fastrr serve running?"
    return DEFAULT_RPC, _NO_RPC_HINT


def _connect(target: tuple[str, str], timeout: float = 10.0) -> Any:
    from fastrr.rpc.client import RpcClient, RpcUnreachable

    address, hint = target
    try:
        return RpcClient(address, timeout)
    except RpcUnreachable:
        _fail(f"cannot reach fastrr RPC at {address} ({hint})")


def _call(client: Any, method: str, payload: Any = True, timeout: float | None = -1.0, flags: int = 0) -> Any:
    from fastrr.rpc.client import RpcError
    from fastrr.rpc.codec import FLAG_JSON

    try:
        return client.call(method, payload, flags=flags or FLAG_JSON, timeout=timeout)
    except RpcError as exc:
        _fail(f"{method}: {exc}")
    except OSError as exc:
        _fail(f"{method}: lost the connection to fastrr RPC at {client.dsn}: {exc}")


@main.command()
@_config_options
@click.argument("plugins", nargs=-1)
@click.pass_context
def reset(ctx: click.Context, plugins: tuple[str, ...], **local: Any) -> None:
    """Replace every worker of the plugins (all by default) without dropping requests."""
    import concurrent.futures

    opts = _merge(ctx, **local)
    target = _rpc_target(opts)
    silent = opts["silent"]
    with _connect(target) as client:
        names = list(plugins) or _call(client, "resetter.List")

    def reset_one(name: str) -> str | None:
        from fastrr.rpc.client import RpcError

        if not silent:
            click.echo(f"resetting plugin: [{name}]", err=True)
        try:
            with _connect(target) as one:
                one.call("resetter.Reset", name, timeout=None)
        except (RpcError, OSError) as exc:
            return f"reset of {name} failed: {exc}"
        if not silent:
            click.echo(f"plugin reset: [{name}]", err=True)
        return None

    with concurrent.futures.ThreadPoolExecutor(max(1, len(names))) as pool:
        errors = [e for e in pool.map(reset_one, names) if e]
    if errors:
        _fail("; ".join(errors))


@main.command()
@_config_options
@click.argument("plugins", nargs=-1)
@click.option("-i", "--interactive", is_flag=True, default=False, help="Redraw every second until Ctrl-C.")
@click.pass_context
def workers(ctx: click.Context, plugins: tuple[str, ...], interactive: bool, **local: Any) -> None:
    """Show the workers of the plugins (all by default): PID, status, execs, memory, CPU, age."""
    from rich.console import Console, Group

    from fastrr.rpc.render import exits_lines, jobs_table, services_table, workers_table

    opts = _merge(ctx, **local)
    target = _rpc_target(opts)
    console = Console(highlight=False)
    with _connect(target) as client:
        def snapshot() -> Group:
            names = list(plugins) or _call(client, "informer.List")
            parts: list[Any] = []
            for name in names:
                now = time.time()
                table = services_table if name == "service" else workers_table  # raw processes: rr's columns
                parts.extend(table(name, _call(client, "informer.Workers", name)["workers"], now))
                parts.extend(exits_lines(_call(client, "informer.Stats", name).get("exits", []), now))
                if name == "jobs":
                    parts.extend(jobs_table(_call(client, "informer.Jobs", "jobs")))
            return Group(*parts)

        if not interactive:
            console.print(snapshot())
            return
        from rich.live import Live

        try:
            if not console.is_terminal:  # a pipe gets one snapshot per second
                while True:
                    console.print(snapshot())
                    console.file.flush()
                    time.sleep(1.0)
            with Live(snapshot(), console=console, auto_refresh=False) as live:
                while True:
                    time.sleep(1.0)
                    live.update(snapshot(), refresh=True)
        except KeyboardInterrupt:
            pass


def _register_jobs() -> None:
    from fastrr.jobs.cli import register

    register(main, _config_options, _merge, _rpc_target, _connect, _call, _fail)


_register_jobs()


@main.command()
@_config_options
@click.option("-f", "--force", is_flag=True, default=False, help="Send SIGTERM twice: stop without waiting.")
@click.pass_context
def stop(ctx: click.Context, force: bool, **local: Any) -> None:
    """Stop the server started with `serve -p` (reads .pid in the working directory)."""
    opts = _merge(ctx, **local)
    if opts["workdir"]:
        workdir = opts["workdir"]
    else:
        config_path = os.path.abspath(opts["config"] or ".rr.yaml")
        workdir = os.path.dirname(config_path) if os.path.isfile(config_path) else os.getcwd()
    pidfile = os.path.join(workdir, ".pid")
    try:
        with open(pidfile) as fh:
            pid = int(fh.read().strip())
    except FileNotFoundError:
        _fail(f"no .pid file in {workdir} (start the server with fastrr serve -p)")
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {pidfile}: {exc}")
    if not opts["silent"]:
        click.echo(f"stopping process with PID: {pid}")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _fail(f"no process with PID {pid} (stale {pidfile})")
    except PermissionError:
        _fail(f"not allowed to signal PID {pid}")
    if force:
        time.sleep(0.2)  # two pending SIGTERMs would merge into one
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # already gone: the graceful stop was quick


@main.command()
@click.option("--quick", is_flag=True, default=False,
              help="A short run (≤ 2 min): 2 repeats of 1 s per point instead of 3 of 5 s.")
@click.option("--apps", default=None, help="Comma list of hello,slim,api,upload,legacy, jobs (the jobs "
              "plugin: push, PHP consumer, ack), jobs-amqp (RabbitMQ: fastrr vs php-amqplib consumers), jobs-redis, "
              "grpc (unary calls vs HTTP/1.1 on one pool), "
              "kv (a cached value from PHP: fastrr kv vs php-redis), or all "
              "(default: hello,slim,api,upload).")
@click.option("--connections", default=None, help="Comma list of connection counts (default 8,64,256).")
@click.option("--repeats", type=click.IntRange(1, 20), default=None, help="Runs per point (default 3; quick 2).")
@click.option("--duration", type=click.IntRange(1, 120), default=None,
              help="Seconds per measured run (default 5; quick 1).")
@click.option("--warmup", type=click.IntRange(0, 60), default=None,
              help="Seconds of unrecorded load before each run (default 1).")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="fastrr PHP workers = php-fpm children (default 4).")
@click.option("--pin", type=click.Choice(["pinned", "unpinned", "both"]), default=None,
              help="pinned: servers on one CPU, wrk on another (default; needs 2 CPUs); unpinned; or both.")
@click.option("--threads", type=click.IntRange(1, 64), default=None, help="wrk threads (default 1).")
@click.option("--out", default=None, help="Output directory (default bench/results/full, or quick).")
@click.option("--profile", is_flag=True, default=False,
              help="Also profile fastrr's front with py-spy and time each PHP worker alone.")
@click.option("--update-readme", is_flag=True, default=False, help="Put the table and plots into README.md.")
@click.option("--report", "report_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Render a saved results.json again instead of running.")
@click.option("--compare", nargs=2, default=None, type=click.Path(exists=True, dir_okay=False),
              help="Compare two results.json files: does each figure agree within the reported noise?")
@click.option("--max-foreign", type=click.FloatRange(0, 1), default=None,
              help="Pinned: re-run a measurement when other processes took more than this share of the "
                   "server core (default 0.15; 1 disables).")
@click.option("--engine", type=click.Choice(["auto", "python", "c"]), default=None,
              help="fastrr's http.engine to measure (default: the server's default).")
@click.option("--relay", default=None, help="fastrr's server.relay to measure, e.g. shm (default: pipes).")
@click.option("--active-limit", default=None,
              help="fastrr's http.pool.active_limit to measure: auto, off or N (default: the server's, auto).")
@click.option("--no-plots", is_flag=True, default=False, help="Skip the PNG plots.")
@click.option("--plain", is_flag=True, default=False, help="No progress bar or colours (plain lines).")
def bench(**options: Any) -> None:
    """Benchmark fastrr against nginx + php-fpm on the same PHP apps (bench/apps/).

    Starts private instances of both on 127.0.0.1 in a temp dir, loads them with
    wrk, and writes a table, results.json, results.md and PNG plots.
    """
    from fastrr.benchmark.cli import main as bench_main

    sys.exit(bench_main(**options))
