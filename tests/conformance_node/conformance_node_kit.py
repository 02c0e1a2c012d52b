"""Nodes for the kit's self-test: a node made by ``shulian init`` with the kit's fixture loaded by
``shulian-conform fixture init|load``, served as the real daemon (a subprocess) or in-process on a
background event loop with a deliberately broken service layer (the test doubles below).

Doubles (thin subclasses of :class:`node.service.NodeCore`, served by the real gRPC server):

- :class:`LeakingCore` projects conditional reads to the granted items but forgets the masking
  (its Delivery still claims the masking);
- :class:`AcceptingCore` stores every record that decodes, valid or not;
- :class:`ExpiryBlindCore` reads the responsibility list as if no grant ever expired.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from node.config import NodeConfig, load_config
from node.policy import ResponsibilityList
from node.service import NodeCore, PreparedBatch
from node.validation import decode_record

PROVIDER = "91110000600037341L"
_SERVING = re.compile(r'"message": "serving"')


@dataclass(frozen=True)
class KitNode:
    """A node with the kit's fixture loaded, and the parameter file for ``shulian-conform node``."""

    root: Path
    ca_dir: Path
    config_path: Path
    fixture_dir: Path
    params: Path

    def config(self) -> NodeConfig:
        return load_config(self.config_path, env={})


def invoke(args: Sequence[str], *, node_cli: bool = False) -> Any:
    """Run ``shulian`` (node_cli) or ``shulian-conform`` in-process; returns click's Result."""
    from conformance.cli import cli as kit_cli
    from node.cli import cli as node_cli_group

    return CliRunner().invoke(node_cli_group if node_cli else kit_cli, list(args))


def make_node(root: Path) -> KitNode:
    """A CA, a node made by ``shulian init``, and the fixture written and loaded by the kit's CLI."""
    ca_dir, node_dir, fixture_dir = root / "ca", root / "node", root / "kit-fixture"
    steps = [
        (["ca", "init", str(ca_dir), "--name", "符合性测试联盟CA"], True),
        (["init", str(node_dir), "--department", "符合性测试被测局", "--code", PROVIDER, "--level", "city",
          "--division", "110000", "--listen", "127.0.0.1:0", "--ca-dir", str(ca_dir), "--durability", "normal"], True),
        (["fixture", "init", str(fixture_dir)], False),
        (["fixture", "load", str(fixture_dir), "--config", str(node_dir / "node.toml"), "--ca-dir", str(ca_dir)],
         False),
    ]
    for args, node_cli in steps:
        result = invoke(args, node_cli=node_cli)
        if result.exit_code != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.exit_code}): {result.output}")
    return KitNode(root, ca_dir, node_dir / "node.toml", fixture_dir, fixture_dir / "params.toml")


def run_kit(address: str, params: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    """``shulian-conform node`` against ``address``; returns the exit code and summary.json."""
    result = invoke(["node", "--target", address, "--params", str(params), "--out", str(out), *extra])
    summary_file = out / "summary.json"
    if not summary_file.exists():
        raise AssertionError(f"no summary written (exit {result.exit_code}): {result.output}")
    return result.exit_code, json.loads(summary_file.read_text(encoding="utf-8"))


def outcomes(summary: Mapping[str, Any]) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in summary["cases"]}


def messages(summary: Mapping[str, Any]) -> dict[str, str]:
    return {c["id"]: c["message"] for c in summary["cases"]}


# ------------------------------------------------------------------ the real daemon


class Daemon:
    """``shulian-node run`` as a subprocess (as tests/grpc starts it); logs go to a file."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def __enter__(self) -> Daemon:
        exe = Path(sys.executable).with_name("shulian-node")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from node.daemon import main; main()"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([*cmd, "run", "--config", str(self.config_path), "--grace", "2"],
                                         stdout=log, stderr=log, env=dict(os.environ))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
                if _SERVING.search(line):
                    self.address = json.loads(line)["address"]
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"shulian-node exited with {self.proc.returncode}: {self.log_path.read_text()}")
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"shulian-node did not start: {self.log_path.read_text()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


# ------------------------------------------------------------------ in-process servers


class ThreadedNode:
    """A NodeCore (or a double) behind the real NodeServer on 127.0.0.1:0, on its own event loop thread,
    so the kit (synchronous, in the test's thread) can call it."""

    def __init__(self, cfg: NodeConfig, core_class: type[NodeCore] = NodeCore) -> None:
        self.cfg = cfg
        self.core_class = core_class
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kit-node", daemon=True)
        self.address = ""

    async def _start(self) -> None:
        from node.transport.grpc import NodeServer

        self.core = await asyncio.to_thread(self.core_class.open, self.cfg)
        self.server = NodeServer(self.core, listen="127.0.0.1:0", grace=1.0)
        await self.server.start()
        self.address = self.server.address

    async def _stop(self) -> None:
        await self.server.stop(1.0)
        await asyncio.to_thread(self.core.close)

    def __enter__(self) -> ThreadedNode:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()


class LeakingCore(NodeCore):
    """Projects a conditional read to the granted items, but leaves masked items in clear."""

    def decide(self, *args: Any, **kwargs: Any) -> Any:
        decision = super().decide(*args, **kwargs)
        if not decision.maskers:
            return decision
        keep = {"id", "type", *(decision.items or ())}

        def leak(record: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in record.items() if k in keep}

        return dataclasses.replace(decision, _projector=leak)


class AcceptingCore(NodeCore):
    """Stores every record that decodes as JSON, whatever the standard says about it."""

    def prepare(self, dataset_id: str, records: Sequence[tuple[str, Any]], *,
                record_type: str | None = None) -> PreparedBatch:
        prepared = super().prepare(dataset_id, records, record_type=record_type)
        outcomes = list(prepared.outcomes)
        good = dict(zip(prepared.good_at, prepared.good, strict=True))
        for i, outcome in enumerate(prepared.outcomes):
            if outcome is not None and outcome.violations:
                payload = records[i][1]
                good[i] = (outcome.id, decode_record(payload) if isinstance(payload, bytes | str) else payload)
                outcomes[i] = None
        order = sorted(good)
        return PreparedBatch(prepared.dataset, outcomes, [good[i] for i in order], order, prepared.warnings)


class _ExpiryBlindPolicy:
    """The node's policy source, read as if no grant ever expired."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def current(self) -> ResponsibilityList:
        lst: ResponsibilityList = self._source.current()
        return dataclasses.replace(lst, datasets=tuple(
            dataclasses.replace(d, grants=tuple(dataclasses.replace(g, until=None) for g in d.grants))
            for d in lst.datasets))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


class ExpiryBlindCore(NodeCore):
    """Decides reads against grants whose expiry dates are ignored."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = _ExpiryBlindPolicy(self.policy)  # type: ignore[assignment]
