"""Node cases: registered by id, run against a target, never passed when missing; exit 3 when the node is down."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance import (
    NodeContext,
    NodeTarget,
    Outcome,
    Registry,
    RunOptions,
    default_registry,
    discover,
    isolated_registry,
    load_manifests,
    manifests_dir,
    run_cases,
)
from conformance.cli import cli
from node.errors import StandardError, Unavailable


@pytest.fixture()
def listening() -> Iterator[str]:
    """A real TCP listener on loopback: enough for the kit's reachability probe."""
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


@pytest.fixture()
def closed_port() -> str:
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


def _node_cases() -> list:  # type: ignore[type-arg]
    return load_manifests([manifests_dir() / "node.ttl"])


def test_every_registered_check_has_a_manifest_entry() -> None:
    ids = {c.id for c in _node_cases()}
    assert set(discover().ids()) <= ids


def test_without_implementations_every_node_case_is_not_run(listening: str) -> None:
    run = run_cases(_node_cases(), RunOptions(target=NodeTarget(listening), registry=Registry()))
    assert {r.outcome for r in run.results} == {Outcome.UNTESTED}
    assert all("no check is implemented" in r.message for r in run.results)
    assert run.mandatory_passed == 0 and not run.conforms and run.exit_code == 1


def test_node_cli_reports_missing_checks_as_not_run(listening: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["node", "--target", listening, "--out", str(tmp_path), "--verbose"])
    registered = set(discover().ids())
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    outcomes = {c["id"]: c["outcome"] for c in summary["cases"]}
    assert set(outcomes) == {c.id for c in _node_cases()}
    missing = {i for i in outcomes if i not in registered}
    assert all(outcomes[i] == "untested" for i in missing)
    assert all(outcomes[i] != "passed" for i in missing)
    if any(c.mandatory and c.id in missing for c in _node_cases()):
        assert r.exit_code == 1 and not summary["conforms"], r.output


def _registry() -> Registry:
    reg = Registry()

    @reg.case("CAT-01")
    def passes(ctx: NodeContext) -> None:
        ctx.note("catalog has 2 datasets")
        ctx.check(ctx.shared("conn", object) is ctx.shared("conn", object), "not shared")

    @reg.case("CAT-02")
    def fails(ctx: NodeContext) -> None:
        ctx.fail("dataset 101001001/000001 is not described")

    @reg.case("QRY-01")
    def asserts(ctx: NodeContext) -> None:
        assert 1 == 2, "the query returned an invalid record"

    @reg.case("ACC-01")
    async def async_passes(ctx: NodeContext) -> None:
        import asyncio

        await asyncio.sleep(0)

    @reg.case("ACC-02")
    def needs_param(ctx: NodeContext) -> None:
        ctx.param("conditional_dataset")

    @reg.case("ACC-03")
    def crashes(ctx: NodeContext) -> None:
        raise KeyError("oops")

    @reg.case("ACC-04")
    def not_applicable(ctx: NodeContext) -> None:
        ctx.inapplicable("the node publishes no conditional dataset")

    @reg.case("KFK-01")
    def kafka(ctx: NodeContext) -> None:
        raise AssertionError("must not run without --kafka")

    return reg


def test_outcomes_of_registered_checks(listening: str) -> None:
    run = run_cases(_node_cases(), RunOptions(target=NodeTarget(listening), registry=_registry()))
    got = {r.case.id: r for r in run.results}
    assert got["CAT-01"].outcome is Outcome.PASSED and got["CAT-01"].details == ("catalog has 2 datasets",)
    assert got["CAT-02"].outcome is Outcome.FAILED and "not described" in got["CAT-02"].message
    assert got["QRY-01"].outcome is Outcome.FAILED and "invalid record" in got["QRY-01"].message
    assert got["ACC-01"].outcome is Outcome.PASSED
    assert got["ACC-02"].outcome is Outcome.CANT_TELL and "--param conditional_dataset=" in got["ACC-02"].message
    assert got["ACC-03"].outcome is Outcome.CANT_TELL and "KeyError" in got["ACC-03"].message
    assert got["ACC-04"].outcome is Outcome.INAPPLICABLE
    assert got["KFK-01"].outcome is Outcome.INAPPLICABLE and "--kafka" in got["KFK-01"].message
    assert got["KFK-02"].outcome is Outcome.UNTESTED
    assert run.exit_code == 1


def test_params_reach_the_checks(listening: str) -> None:
    reg = Registry()
    seen: list[str] = []

    @reg.case("ACC-02")
    def uses(ctx: NodeContext) -> None:
        seen.append(ctx.param("conditional_dataset"))

    cases = [c for c in _node_cases() if c.id == "ACC-02"]
    target = NodeTarget(listening, params={"conditional_dataset": "101001001/000002"})
    run = run_cases(cases, RunOptions(target=target, registry=reg))
    assert seen == ["101001001/000002"] and run.results[0].outcome is Outcome.PASSED and run.exit_code == 0


def test_an_unreachable_node_exits_3(closed_port: str) -> None:
    run = run_cases(_node_cases(), RunOptions(target=NodeTarget(closed_port, timeout=2), registry=_registry()))
    cat = next(r for r in run.results if r.case.id == "CAT-01")
    assert cat.outcome is Outcome.CANT_TELL and cat.unavailable and "unavailable" in cat.message
    assert run.exit_code == 3


def test_unavailable_raised_by_a_check_exits_3(listening: str) -> None:
    reg = Registry()

    @reg.case("OPS-01")
    def down(ctx: NodeContext) -> None:
        raise Unavailable("connection reset by the node")

    cases = [c for c in _node_cases() if c.id == "OPS-01"]
    run = run_cases(cases, RunOptions(target=NodeTarget(listening), registry=reg))
    assert run.results[0].outcome is Outcome.CANT_TELL and run.exit_code == 3


def test_registry_refuses_bad_ids_and_double_registration() -> None:
    reg = Registry()
    with pytest.raises(StandardError, match="must look like"):
        reg.case("cat01")

    @reg.case("CAT-01")
    def one(ctx: NodeContext) -> None:
        return None

    def other(ctx: NodeContext) -> None:
        return None

    with pytest.raises(StandardError, match="implemented twice"):
        reg.case("CAT-01")(other)


def test_case_modules_are_discovered_without_touching_the_framework(tmp_path: Path, listening: str) -> None:
    pkg = tmp_path / "kit_plugin_cases_for_test"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "health.py").write_text(textwrap.dedent('''
        from conformance import NodeContext, case

        @case("OPS-01")
        def health(ctx: NodeContext) -> None:
            ctx.check(ctx.target.address, "no address")
    '''), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        with isolated_registry() as reg:
            found = discover(["kit_plugin_cases_for_test"], entry_points=False)
            assert found is reg and reg.ids() == ["OPS-01"]
            run = run_cases([c for c in _node_cases() if c.id == "OPS-01"],
                            RunOptions(target=NodeTarget(listening), registry=reg))
            assert run.results[0].outcome is Outcome.PASSED
        shipped = default_registry().get("OPS-01")
        assert shipped is None or "kit_plugin_cases_for_test" not in shipped.where
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("kit_plugin_cases_for_test")]:
            del sys.modules[name]


def test_a_broken_case_module_is_named(tmp_path: Path) -> None:
    pkg = tmp_path / "kit_broken_cases_for_test"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "bad.py").write_text("import nonexistent_module_xyz\n", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        with isolated_registry(), pytest.raises(StandardError, match="kit_broken_cases_for_test.bad"):
            discover(["kit_broken_cases_for_test"], entry_points=False)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("kit_broken_cases_for_test")]:
            del sys.modules[name]


def test_node_cli_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["node", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--target" in r.output
    r = runner.invoke(cli, ["node", "--target", "no-port", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "HOST:PORT" in r.output
    r = runner.invoke(cli, ["run", "--kafka", "x:9092", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--target" in r.output
    r = runner.invoke(cli, ["node", "--target", "127.0.0.1:1", "--param", "novalue", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "NAME=VALUE" in r.output
