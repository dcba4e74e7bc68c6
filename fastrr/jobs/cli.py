"""`fastrr jobs`: the pipelines of a running server, over RPC (jobs.* in protobuf, as `rr jobs`).

    fastrr jobs [stat]                 the table `fastrr workers` shows under the consumers
    fastrr jobs list                   pipeline names
    fastrr jobs pause|resume|destroy P [P ...]

RoadRunner's spelling works too: `rr jobs --list`, `rr jobs --pause p1,p2`,
`--resume`, `--destroy` (a one-column Pipeline(s) table; `-s` prints nothing).
"""

from __future__ import annotations

from typing import Any

import click

ACTIONS = ("stat", "list", "pause", "resume", "destroy")


def _split(values: tuple[str, ...]) -> list[str]:
    return [name for value in values for name in value.split(",") if name.strip()]


def run_jobs(client: Any, call: Any, fail: Any, action: str, pipelines: list[str], silent: bool,
             rr_style: bool) -> None:
    from rich.console import Console

    from fastrr.jobs import proto
    from fastrr.rpc.codec import FLAG_PROTO
    from fastrr.rpc.render import jobs_table, pipelines_table

    console = Console(highlight=False)

    def pcall(method: str, message: Any) -> bytes:
        return call(client, method, message.SerializeToString(), flags=FLAG_PROTO)

    if action == "stat":
        rows = call(client, "informer.Jobs", "jobs")
        if pipelines:
            missing = sorted(set(pipelines) - {r["Pipeline"] for r in rows})
            if missing:
                fail(f"no such pipeline: {', '.join(missing)}")
            rows = [r for r in rows if r["Pipeline"] in pipelines]
        if not silent:
            console.print(*jobs_table(rows))
        return
    if action == "list":
        answer = proto.Pipelines()
        answer.ParseFromString(pcall("jobs.List", proto.Empty()))
        names = sorted(answer.pipelines)
    else:
        if not pipelines:
            fail(f"jobs {action}: name the pipelines (e.g. fastrr jobs {action} emails)")
        method = {"pause": "jobs.Pause", "resume": "jobs.Resume", "destroy": "jobs.Destroy"}[action]
        raw = pcall(method, proto.Pipelines(pipelines=pipelines))
        names = pipelines
        if action == "destroy":
            answer = proto.Pipelines()
            answer.ParseFromString(raw)
            names = list(answer.pipelines)
    if silent:
        return
    if rr_style or action == "list":
        console.print(pipelines_table(names))
    else:
        past = {"pause": "paused", "resume": "resumed", "destroy": "destroyed"}[action]
        for name in names:
            click.echo(f"pipeline {past}: [{name}]")


def register(main: click.Group, config_options: Any, merge: Any, rpc_target: Any, connect: Any, call: Any,
             fail: Any) -> None:
    @main.command("jobs")
    @config_options
    @click.argument("action", required=False, type=click.Choice(ACTIONS))
    @click.argument("pipelines", nargs=-1)
    @click.option("--list", "rr_list", is_flag=True, default=False, help="(rr) List the pipelines.")
    @click.option("--pause", "rr_pause", multiple=True, help="(rr) Pause these pipelines: p1,p2.")
    @click.option("--resume", "rr_resume", multiple=True, help="(rr) Resume these pipelines: p1,p2.")
    @click.option("--destroy", "rr_destroy", multiple=True, help="(rr) Destroy these pipelines: p1,p2.")
    @click.pass_context
    def jobs(ctx: click.Context, action: str | None, pipelines: tuple[str, ...], rr_list: bool,
             rr_pause: tuple[str, ...], rr_resume: tuple[str, ...], rr_destroy: tuple[str, ...],
             **local: Any) -> None:
        """Jobs pipelines: stat (default), list, pause, resume, destroy."""
        opts = merge(ctx, **local)
        rr = [(a, _split(v)) for a, v in (("pause", rr_pause), ("resume", rr_resume), ("destroy", rr_destroy))
              if v]
        if rr_list:
            rr.append(("list", []))
        if rr and action:
            fail("give either an action (fastrr jobs pause p1) or rr's flags (--pause p1), not both")
        with connect(rpc_target(opts)) as client:
            if rr:
                for act, names in rr:
                    run_jobs(client, call, fail, act, names, opts["silent"], rr_style=True)
                return
            run_jobs(client, call, fail, action or "stat", list(pipelines), opts["silent"], rr_style=False)
