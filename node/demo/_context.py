"""What every step of the demo works with: the federation, the narrator, CLI runs, gRPC clients."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.demo._data import Department
from node.demo._narrate import Narrator, Skip
from node.demo._procs import CliRun, Processes, run_cli
from node.demo._world import World

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.transport.grpc import NodeClient

__all__ = ["Context", "component"]


def component(module: str, what: str) -> Any:
    """Import an optional component at run time; :class:`Skip` naming it when it is absent."""
    try:
        if importlib.util.find_spec(module) is None:
            raise Skip(f"{what} not installed")
    except (ModuleNotFoundError, ValueError) as exc:  # a parent package is missing, or blocked
        raise Skip(f"{what} not installed") from exc
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Skip(f"{what} not installed ({exc})") from exc


@dataclass
class Context:
    world: World
    procs: Processes
    say: Narrator
    env: dict[str, str]
    kafka_skip: str = ""  # why Kafka is not part of this run ("" when it is)
    state: dict[str, Any] = field(default_factory=dict)
    _configs: dict[str, NodeConfig] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return self.world.out

    def rel(self, path: Path) -> str:
        """A path as the commands show it (relative to the demo's folder, where they run)."""
        try:
            return str(path.relative_to(self.out))
        except ValueError:
            return str(path)

    async def cli(self, args: Sequence[str], program: str = "shulian", show: bool = True,
                  timeout: float = 120.0) -> CliRun:
        run = await asyncio.to_thread(run_cli, program, args, env=self.env, cwd=self.out, timeout=timeout)
        if show:
            self.say.command(run.shown)
        return run

    def cfg(self, dept: Department) -> NodeConfig:
        from node.config import load_config

        if dept.key not in self._configs:
            self._configs[dept.key] = load_config(self.world.site(dept).config, env={})
        return self._configs[dept.key]

    def invalidate(self, dept: Department) -> None:
        """Forget a node's configuration (after something rewrote its node.toml)."""
        self._configs.pop(dept.key, None)

    def client(self, me: Department, target: Department, timeout: float = 20.0) -> NodeClient:
        """A gRPC client with ``me``'s certificate (mutual TLS) to ``target``'s node."""
        from node.federation import load_node_directory
        from node.transport.grpc import NodeClient

        cfg = self.cfg(me)
        return NodeClient.from_config(cfg, self.world.site(target).address, directory=load_node_directory(cfg),
                                      timeout=timeout)
