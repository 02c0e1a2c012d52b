"""A small federation for the gRPC tests and the bench: a CA, nodes made by ``shulian init``,
a provider with datasets of every sharing type and a responsibility list with grants.

Nodes:

- ``provider`` (A): holds ``population`` (Person, conditional), ``enterprises``
  (LegalEntity, unconditional), ``secret`` (Person, not shared) and ``inbox`` (Person,
  unconditional, written by pushes); ``consumer`` is a configured peer (may push);
- ``consumer`` (B): granted ``population`` items name, birthDate, identityNumber for
  purpose 养老金发放 until 2099, identityNumber masked keep:6:4;
- ``expired`` (C): granted ``population`` for 最低生活保障资格核查 until 2020-01-01;
- ``outsider``: a certificate from the federation CA, but not in the directory.

Records use province division codes (the shipped standard lists provinces only).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from node.config import NodeConfig, load_config, write_config_file
from node.pki import CertificateAuthority, IssuedCertificate, issue_node_certificate, load_ca
from node.policy import DatasetPolicy, Grant, MaskRule, ResponsibilityList, SharingType, dump_list

PROVIDER = "91110000600037341L"
CONSUMER = "11110000000000001R"
EXPIRED = "11110000000000002W"
OUTSIDER = "12330100470000004N"

PURPOSE = "养老金发放"
EXPIRED_PURPOSE = "最低生活保障资格核查"
GRANTED_ITEMS = ("birthDate", "identityNumber", "name")
BASIS = "《中华人民共和国个人信息保护法》第三十四条"
SECRET_BASIS = "《中华人民共和国保守国家秘密法》第十三条"

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SURNAMES = "王李张刘陈杨黄赵吴周"
_PROVINCES = ("110000", "120000", "310000", "360000", "440000")


def identity_number(n: int) -> tuple[str, str]:
    """A valid GB 11643 number and its birth date, distinct for each n < 10**6."""
    day = dt.date(1950, 1, 1) + dt.timedelta(days=n % 20000)
    body = f"110105{day:%Y%m%d}{(n // 20000) % 1000:03d}"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]
    return body + check, day.isoformat()


def person(n: int, prefix: str = "p") -> dict[str, Any]:
    number, birth = identity_number(n)
    return {
        "id": f"{prefix}{n:07d}",
        "type": "Person",
        "identityNumber": number,
        "name": _SURNAMES[n % 10] + "秀英",
        "sex": "1" if int(number[16]) % 2 else "2",
        "ethnicity": "01",
        "birthDate": birth,
        "householdDivision": _PROVINCES[n % len(_PROVINCES)],
    }


def enterprise(n: int) -> dict[str, Any]:
    return {
        "id": f"e{n:07d}",
        "type": "LegalEntity",
        "creditCode": "91110108551385082Q",
        "name": f"某某科技有限公司{n}",
        "legalRepresentative": "张三",
        "establishmentDate": "2010-05-01",
        "registrationDivision": "110000",
        "entityStatus": "1",
    }


def _catalog(title: str, sharing: str, basis: str = "", seq: int = 1) -> dict[str, Any]:
    out = {"title_zh": title, "title_en": title, "description": f"{title}（测试）",
           "resource_code": f"1010100/{seq:06d}", "update_cycle": "daily", "sharing_type": sharing}
    if basis:
        out["sharing_basis"] = basis
    if sharing == "conditional":
        out["sharing_conditions"] = "仅向获授权部门提供，限于授权用途"
    return out


@dataclass
class Node:
    name: str
    code: str
    dir: Path

    @property
    def config_path(self) -> Path:
        return self.dir / "node.toml"

    def config(self) -> NodeConfig:
        return load_config(self.config_path, env={})

    @property
    def tls(self) -> tuple[bytes, bytes, bytes]:
        """(ca, cert, key) PEM bytes."""
        t = self.dir / "tls"
        return (t / "ca.pem").read_bytes(), (t / "node.pem").read_bytes(), (t / "node.key").read_bytes()


@dataclass
class Federation:
    root: Path
    ca_dir: Path
    nodes: dict[str, Node]

    @property
    def ca(self) -> CertificateAuthority:
        return load_ca(self.ca_dir)

    def issue(self, code: str, name: str = "测试", **kwargs: Any) -> IssuedCertificate:
        return issue_node_certificate(self.ca, code=code, name=name, **kwargs)

    @property
    def provider(self) -> Node:
        return self.nodes["provider"]


def _init_node(runner: CliRunner, root: Path, ca_dir: Path, name: str, code: str, port: int) -> Node:
    from node.cli import cli

    d = root / name
    result = runner.invoke(cli, ["init", str(d), "--department", f"测试{name}局", "--code", code, "--level", "city",
                                 "--division", "110000", "--listen", "127.0.0.1:0",
                                 "--address", f"127.0.0.1:{port}", "--ca-dir", str(ca_dir)])
    if result.exit_code != 0:
        raise RuntimeError(f"shulian init {name} failed: {result.output}")
    return Node(name, code, d)


def provider_policy(consumer_until: dt.date = dt.date(2099, 12, 31)) -> ResponsibilityList:
    granted = Grant.create(dataset_id="population", consumer_code=CONSUMER, items=GRANTED_ITEMS, purposes=[PURPOSE],
                           until=consumer_until, masking={"identityNumber": MaskRule.keep(6, 4)},
                           basis="《社会保险法》")
    expired = Grant.create(dataset_id="population", consumer_code=EXPIRED, items=["name"],
                           purposes=[EXPIRED_PURPOSE], until=dt.date(2020, 1, 1))
    return ResponsibilityList((
        DatasetPolicy("population", SharingType.CONDITIONAL, title="人口基础信息", basis=(BASIS,),
                      grants=(granted, expired)),
        DatasetPolicy("enterprises", SharingType.UNCONDITIONAL, title="法人单位基础信息"),
        DatasetPolicy("secret", SharingType.NOT_SHARED, title="涉密人员信息", basis=(SECRET_BASIS,)),
        DatasetPolicy("inbox", SharingType.UNCONDITIONAL, title="收件箱"),
    ), provider_code=PROVIDER, title="测试责任清单")


def make_federation(root: Path, *, durability: str = "full") -> Federation:
    """Create the CA, the nodes and the provider's datasets and responsibility list under ``root``."""
    from node.cli import cli

    runner = CliRunner()
    ca_dir = root / "ca"
    result = runner.invoke(cli, ["ca", "init", str(ca_dir), "--name", "测试联盟CA"])
    if result.exit_code != 0:
        raise RuntimeError(f"shulian ca init failed: {result.output}")
    nodes = {name: _init_node(runner, root, ca_dir, name, code, 50051 + i)
             for i, (name, code) in enumerate((("provider", PROVIDER), ("consumer", CONSUMER), ("expired", EXPIRED)))}
    provider = nodes["provider"]
    dump_list(provider_policy(), provider.dir / "policy.ttl")
    data = tomllib.loads(provider.config_path.read_text(encoding="utf-8"))
    data["node"]["durability"] = durability
    data["policy"]["responsibility_list"] = "policy.ttl"
    data["datasets"] = [
        {"id": "population", "record_type": "Person", "catalog": _catalog("人口基础信息", "conditional", BASIS, 1)},
        {"id": "enterprises", "record_type": "LegalEntity", "catalog": _catalog("法人单位基础信息", "unconditional", seq=2)},
        {"id": "secret", "record_type": "Person", "catalog": _catalog("涉密人员信息", "not_shared", SECRET_BASIS, 3)},
        {"id": "inbox", "record_type": "Person", "catalog": _catalog("收件箱", "unconditional", seq=4)},
    ]
    data["peers"] = [{"code": CONSUMER, "address": "127.0.0.1:50052", "name": "测试consumer局"}]
    write_config_file(provider.config_path, data)
    provider.config()  # fails here if the test set-up is wrong
    return Federation(root, ca_dir, nodes)


def load_records(cfg: NodeConfig, dataset: str, records: list[dict[str, Any]]) -> None:
    """Put records straight into a node's store (around the boundary, as an adapter import would)."""
    from node.store import Store

    with Store(cfg.store, durability=cfg.durability) as store:
        ds = cfg.dataset(dataset)
        store.ensure_dataset(dataset, ds.record_type)
        for i in range(0, len(records), 1000):
            store.upsert_many(dataset, [(r["id"], r) for r in records[i:i + 1000]])


# ------------------------------------------------------------------ in-process server


class InProcessNode:
    """A NodeCore + NodeServer on 127.0.0.1:0 inside the running event loop."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg

    async def __aenter__(self) -> InProcessNode:
        from node.service import NodeCore
        from node.transport.grpc import NodeServer

        self.core = await asyncio.to_thread(NodeCore.open, self.cfg)
        self.server = NodeServer(self.core, listen="127.0.0.1:0", grace=2.0)
        await self.server.start()
        return self

    @property
    def address(self) -> str:
        return self.server.address

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop(1.0)
        self.core.close()


def client_for(node: Node, address: str, fed: Federation | None = None) -> Any:
    from node.federation import load_node_directory
    from node.transport.grpc import NodeClient

    cfg = node.config()
    return NodeClient.from_config(cfg, address, directory=load_node_directory(cfg), timeout=30)


# ------------------------------------------------------------------ daemon subprocess

_SERVING = re.compile(r'"message": "serving"')


class Daemon:
    """``shulian-node run`` as a real subprocess; logs (JSON lines) go to a file."""

    def __init__(self, node: Node, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.node = node
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self, timeout: float = 60.0) -> Daemon:
        exe = Path(sys.executable).with_name("shulian-node")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from node.daemon import main; main()"]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        env = {**os.environ, **(self.env or {})}
        self.proc = subprocess.Popen([*cmd, "run", "--config", str(self.node.config_path), "--grace", "5"],
                                     stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines(offset):
                if _SERVING.search(line):
                    self.address = json.loads(line)["address"]
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"shulian-node exited with {self.proc.returncode}:\n{self.text()[-4000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"shulian-node did not start within {timeout} s:\n{self.text()[-4000:]}")

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def lines(self, offset: int = 0) -> Iterator[str]:
        if not self.log_path.exists():
            return
        with self.log_path.open("rb") as fh:
            fh.seek(offset)
            for raw in fh:
                yield raw.decode("utf-8", "replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
