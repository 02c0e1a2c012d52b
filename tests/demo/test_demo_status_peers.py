"""`shulian status` and `shulian peers` against real nodes served in-process (mutual TLS, port 0)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import sys
import threading
import tomllib
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grpc"))

import grpc_testkit as kit  # noqa: E402

from node.cli import cli  # noqa: E402
from node.config import write_config_file  # noqa: E402
from node.store import Store  # noqa: E402


class ServedNode:
    """An in-process node (grpc_testkit.InProcessNode) on its own event loop in a thread, so the CLI
    under test can run its own ``asyncio.run`` in the test's thread."""

    def __init__(self, node: kit.Node) -> None:
        self.node = node
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"node-{node.name}", daemon=True)
        self.inner: kit.InProcessNode | None = None

    def __enter__(self) -> ServedNode:
        self.thread.start()
        self.inner = kit.InProcessNode(self.node.config())
        future: Future[Any] = asyncio.run_coroutine_threadsafe(self.inner.__aenter__(), self.loop)
        future.result(60)
        return self

    @property
    def address(self) -> str:
        assert self.inner is not None
        return self.inner.address

    def __exit__(self, *exc: object) -> None:
        if self.inner is not None:
            asyncio.run_coroutine_threadsafe(self.inner.__aexit__(None, None, None), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> kit.Federation:
    federation = kit.make_federation(tmp_path_factory.mktemp("status-fed"))
    cfg = federation.provider.config()
    kit.load_records(cfg, "population", [kit.person(i) for i in range(7)])
    kit.load_records(cfg, "enterprises", [kit.enterprise(i) for i in range(3)])
    return federation


@pytest.fixture(scope="module")
def provider(fed: kit.Federation) -> Iterator[ServedNode]:
    with ServedNode(fed.provider) as served:
        yield served


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def set_peers(node: kit.Node, peers: list[dict[str, str]]) -> None:
    data = tomllib.loads(node.config_path.read_text(encoding="utf-8"))
    data["peers"] = peers
    write_config_file(node.config_path, data)


# ---------------------------------------------------------------- status


def test_status_json_reports_the_node(fed: kit.Federation, provider: ServedNode) -> None:
    r = run("status", "--config", str(fed.provider.config_path), "--address", provider.address, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["department"] == kit.PROVIDER and report["state"] == "ok"
    assert report["health"] == {"": "SERVING"}
    assert report["caller"] == kit.PROVIDER  # asked with the node's own certificate
    counts = {d["id"]: d["records"] for d in report["datasets"]}
    assert counts["population"] == 7 and counts["enterprises"] == 3 and counts["secret"] == 0
    population = next(d for d in report["datasets"] if d["id"] == "population")
    assert population["record_type_zh"] == "人口基础信息 Person" and population["sharing_type_zh"] == "有条件共享"
    assert report["level_zh"] == "市级" and report["division_zh"] == "110000 北京市"
    assert report["kafka"] is None and report["components"].get("kafka", "off") == "off"
    assert report["access"]["source"] == "store" and report["findings"] == []


def test_status_human_output_and_overdue_requests(fed: kit.Federation, provider: ServedNode) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    with Store(fed.provider.config().store) as store:
        store.file_access_request(consumer=kit.CONSUMER, dataset="population", purpose="就业困难人员认定",
                                  scenario="核验", items=["name"], request_id="req-status-overdue",
                                  filed_at=long_ago)
        store.file_access_request(consumer=kit.EXPIRED, dataset="population", purpose="最低生活保障资格核查",
                                  scenario="核验", items=["name"], request_id="req-status-fresh")
    try:
        r = run("status", "--config", str(fed.provider.config_path), "--address", provider.address)
        assert r.exit_code == 1, r.output  # an overdue request is a finding
        assert "人口基础信息" in r.stdout and "有条件共享" in r.stdout and "市级" in r.stdout
        assert "2 pending, 1 overdue" in r.stdout and "OVERDUE" in r.stdout
        assert "finding:" in r.stdout and "past their deadline" in r.stdout
        report = json.loads(run("status", "--config", str(fed.provider.config_path), "--address",
                                provider.address, "--json").stdout)
        assert report["access"]["pending"] == 2 and report["access"]["overdue"] == 1
        assert [x["id"] for x in report["access"]["requests"]][0] == "req-status-overdue"
    finally:
        with Store(fed.provider.config().store) as store:
            for rid in ("req-status-overdue", "req-status-fresh"):
                store.decide_access_request(rid, approve=False, reason="测试结束")


def test_status_of_a_node_that_is_down_exits_3(fed: kit.Federation) -> None:
    r = run("status", "--config", str(fed.provider.config_path), "--address", f"127.0.0.1:{closed_port()}",
            "--timeout", "3")
    assert r.exit_code == 3, r.output
    assert "error:" in r.stderr and "Traceback" not in r.output


def test_status_usage_errors_exit_2(fed: kit.Federation, tmp_path: Path) -> None:
    r = run("status", "--config", str(tmp_path / "missing.toml"))
    assert r.exit_code == 2 and "configuration file not found" in r.stderr
    r = run("status", "--config", str(fed.provider.config_path), "--address", "no-port")
    assert r.exit_code == 2 and "--address" in r.stderr
    # the provider listens on port 0, so without --address the directory's address is used (nothing there)
    r = run("status", "--help")
    assert r.exit_code == 0 and "Example:" in r.stdout and "shulian status --config" in r.stdout


# ---------------------------------------------------------------- peers


def test_peers_list_names_members_and_peers(fed: kit.Federation) -> None:
    r = run("peers", "list", "--config", str(fed.provider.config_path), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    rows = {p["code"]: p for p in report["peers"]}
    assert set(rows) == {kit.PROVIDER, kit.CONSUMER, kit.EXPIRED}
    assert rows[kit.PROVIDER]["self"] and rows[kit.PROVIDER]["roles"] == ["this node", "member"]
    assert rows[kit.CONSUMER]["configured"] and "peer (may push here)" in rows[kit.CONSUMER]["roles"]
    assert rows[kit.EXPIRED]["member"] and not rows[kit.EXPIRED]["configured"]
    assert rows[kit.CONSUMER]["level_zh"] == "市级" and rows[kit.CONSUMER]["division_zh"] == "110000 北京市"
    assert report["federation"] == "测试联盟CA" and report["findings"] == []
    human = run("peers", "--config", str(fed.provider.config_path))  # `peers` alone lists
    assert human.exit_code == 0 and "测试consumer局" in human.stdout and "市级" in human.stdout


def test_peers_list_flags_a_peer_that_is_not_a_member(fed: kit.Federation, tmp_path: Path) -> None:
    node = kit.Node("copy", kit.CONSUMER, tmp_path / "consumer")
    import shutil

    shutil.copytree(fed.nodes["consumer"].dir, node.dir)
    set_peers(node, [{"code": kit.OUTSIDER, "address": "127.0.0.1:50099", "name": "外来局"}])
    r = run("peers", "list", "--config", str(node.config_path), "--json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert any(kit.OUTSIDER in f and "not a member" in f for f in report["findings"])


def test_peers_check_pings_over_mutual_tls(fed: kit.Federation, provider: ServedNode, tmp_path: Path) -> None:
    import shutil

    node = kit.Node("checker", kit.CONSUMER, tmp_path / "consumer")
    shutil.copytree(fed.nodes["consumer"].dir, node.dir)
    down = f"127.0.0.1:{closed_port()}"
    set_peers(node, [{"code": kit.PROVIDER, "address": provider.address, "name": "测试provider局"},
                     {"code": kit.EXPIRED, "address": down, "name": "测试expired局"}])
    config = str(node.config_path)

    one = run("peers", "check", kit.PROVIDER, "--config", config, "--json")
    assert one.exit_code == 0, one.output
    [row] = json.loads(one.stdout)["peers"]
    assert row["health"] == "SERVING" and row["identity"] == "ok" and row["latency_ms"] is not None

    everyone = run("peers", "check", "--config", config, "--json", "--timeout", "3")
    assert everyone.exit_code == 3, everyone.output  # a peer is unavailable
    health = {p["code"]: p["health"] for p in json.loads(everyone.stdout)["peers"]}
    assert health == {kit.PROVIDER: "SERVING", kit.EXPIRED: "UNAVAILABLE"}

    # a peer entry whose address answers as another department: a finding
    set_peers(node, [{"code": kit.EXPIRED, "address": provider.address, "name": "测试expired局"}])
    wrong = run("peers", "check", kit.EXPIRED, "--config", config)
    assert wrong.exit_code == 1, wrong.output
    assert f"answers as {kit.PROVIDER}" in wrong.stdout

    unknown = run("peers", "check", kit.OUTSIDER, "--config", config)
    assert unknown.exit_code == 2 and "not a configured peer or federation member" in unknown.stderr


def test_peers_help_has_examples() -> None:
    for args in (["peers", "--help"], ["peers", "list", "--help"], ["peers", "check", "--help"]):
        r = run(*args)
        assert r.exit_code == 0 and "Example:" in r.stdout, args
