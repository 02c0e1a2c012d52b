"""The processes the demo starts (a Tansu broker, ``shulian-node`` daemons) and the CLI runs.

Every long-lived child runs in its own process group (``start_new_session``), so the
terminal's Ctrl-C reaches only the demo, which then stops each group itself: SIGTERM,
a grace period, then SIGKILL. On Linux a child also gets SIGTERM when the demo dies
without cleaning up (``PR_SET_PDEATHSIG``), so nothing outlives a killed demo.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from node.errors import Unavailable

__all__ = ["Processes", "Child", "CliRun", "free_ports", "wait_listening", "run_cli", "exe"]

log = logging.getLogger(__name__)

_SERVING = '"message": "serving"'


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (bound together, then released)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_listening(port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if not alive():
                raise Unavailable(f"the process meant to listen on 127.0.0.1:{port} exited") from None
            time.sleep(0.05)
    raise Unavailable(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def exe(name: str) -> list[str]:
    """The command for one of the project's console scripts, next to this interpreter if installed."""
    found = Path(sys.executable).with_name(name)
    if found.exists():
        return [str(found)]
    module = {"shulian": "node.cli:main", "shulian-node": "node.daemon:main",
              "shulian-conform": "conformance.cli:main"}[name]
    mod, func = module.split(":")
    return [sys.executable, "-c", f"from {mod} import {func}; {func}()"]


def _death_signal() -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when the demo dies (PR_SET_PDEATHSIG).

    The C function is looked up here, in the parent, so the child only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(1, signal.SIGTERM)

    return preexec


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    address: str = ""
    log_offset: int = 0
    terminated: bool = False  # SIGTERM sent (sent once: a second one could land after the daemon's handler is gone)

    def terminate(self) -> None:
        if not self.terminated and self.alive():
            self.terminated = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class Processes:
    """Starts children and stops every one of them (``stop_all`` is idempotent)."""

    env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, cmd: Sequence[str], log_path: Path, cwd: Path | None = None) -> Child:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(cwd) if cwd else None, env=self.env, start_new_session=True,
                                    preexec_fn=_death_signal())
        child = Child(name, proc, log_path)
        self.children.append(child)
        log.debug("started %s (pid %d): %s", name, proc.pid, " ".join(cmd))
        return child

    def start_broker(self, binary: str, port: int, log_path: Path, timeout: float = 20.0) -> Child:
        url = f"tcp://127.0.0.1:{port}"
        child = self.start("broker", [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
                           log_path)
        try:
            wait_listening(port, timeout, child.alive)
        except Unavailable as exc:
            raise Unavailable(f"the Tansu broker did not start: {exc.message}\n{child.tail(2000)}") from exc
        child.address = f"127.0.0.1:{port}"
        return child

    def start_node(self, name: str, config: Path, log_path: Path) -> Child:
        offset = log_path.stat().st_size if log_path.exists() else 0
        child = self.start(name, [*exe("shulian-node"), "run", "--config", str(config), "--grace", "3"], log_path)
        child.log_offset = offset
        return child

    def wait_serving(self, child: Child, timeout: float = 60.0) -> str:
        """Wait for the daemon's ``serving`` log line; returns the address it serves."""
        offset = child.log_offset
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with child.log_path.open("rb") as fh:
                fh.seek(offset)
                for raw in fh:
                    line = raw.decode("utf-8", "replace")
                    if _SERVING in line:
                        with contextlib.suppress(ValueError, KeyError):
                            child.address = str(json.loads(line)["address"])
                            return child.address
            if not child.alive():
                raise Unavailable(f"shulian-node ({child.name}) exited with {child.proc.returncode}:\n"
                                  f"{child.tail()}")
            time.sleep(0.05)
        raise Unavailable(f"shulian-node ({child.name}) did not start within {timeout:.0f} s:\n{child.tail()}")

    def stop(self, child: Child, grace: float = 8.0) -> int | None:
        proc = child.proc
        if proc.poll() is None:
            child.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        else:  # the leader is gone; make sure nothing else of its group is left
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def stop_all(self) -> dict[str, int | None]:
        """Stop the nodes first (they flush to the broker), the broker last."""
        codes: dict[str, int | None] = {}
        order = [c for c in self.children if c.name != "broker"] + [c for c in self.children if c.name == "broker"]
        nodes = [c for c in order if c.name != "broker"]
        for child in nodes:  # SIGTERM every node at once, then wait for each
            child.terminate()
        for child in order:
            codes[child.name] = self.stop(child)
        self.children.clear()
        return codes


@dataclass(frozen=True)
class CliRun:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def shown(self) -> str:
        """The command line as an operator would type it."""
        return " ".join(_quote(a) for a in self.args)

    def json(self) -> object:
        return json.loads(self.stdout)


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./:=,@+" or ord(c) > 127 for c in arg) else repr(arg)


def run_cli(program: str, args: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float = 120.0) -> CliRun:
    """Run ``shulian``/``shulian-conform`` as an operator would; capture its output."""
    cmd = [*exe(program), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", env=env,
                              cwd=str(cwd), timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{program} {' '.join(args)} did not finish within {timeout:.0f} s") from exc
    return CliRun((program, *args), done.returncode, done.stdout, done.stderr)
