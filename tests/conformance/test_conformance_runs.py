"""The kit tests itself: the data manifests over the shipped examples, and over a deliberately broken copy."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from conformance import Outcome, Run, RunOptions, load_manifests, run_cases
from conformance._manifest import file_of
from conformance.cli import cli


def _not_passed(run: Run) -> dict[str, str]:
    return {r.case.id: f"{r.outcome.value}: {r.message}" for r in run.results if r.outcome is not Outcome.PASSED}


def test_every_mandatory_case_passes_over_the_shipped_examples(shipped_run: Run) -> None:
    assert len(shipped_run.results) >= 80
    assert _not_passed(shipped_run) == {}
    assert shipped_run.conforms and shipped_run.exit_code == 0
    assert shipped_run.mandatory_passed == len(shipped_run.results)
    assert {s.kind for s in shipped_run.subjects} == {"software"}
    assert shipped_run.standard.version == "0.1.0"


def test_the_fast_engine_passes_the_record_manifest(full_standard: Path, data_manifests: list[Path]) -> None:
    cases = load_manifests(data_manifests[:1])
    run = run_cases(cases, RunOptions(engine="fast", standard_dir=full_standard))
    assert _not_passed(run) == {}
    assert run.results[0].subject.iri.endswith("/engine/fast")


def test_without_the_division_list_county_examples_are_not_run_never_passed(data_manifests: list[Path]) -> None:
    cases = load_manifests(data_manifests[:1])
    run = run_cases(cases, RunOptions(engine="fast"))  # the shipped standard lists provinces only
    untested = {r.case.id for r in run.results if r.outcome is Outcome.UNTESTED}
    needing = {c.id for c in cases if any(not d.endswith("0000") for d in c.divisions)}
    assert untested == needing and len(needing) >= 5
    assert all(r.outcome is Outcome.PASSED for r in run.results if r.case.id not in needing)
    assert not run.conforms and run.exit_code == 1
    assert all("import-divisions" in r.message for r in run.results if r.case.id in untested)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _break_copy(manifests: Path) -> dict[str, str]:
    """Alter four examples of the copy; return {example path below examples/: why its case must now fail}."""
    ex = manifests.parent.parent / "ontology" / "examples"
    # a valid record that now breaks a rule
    _edit(ex / "Person" / "valid" / "beijing-chaoyang.json", '"sex": "2"', '"sex": "女"')
    # an invalid record that is no longer invalid
    _edit(ex / "Person" / "invalid" / "sex__In.json", '"sex": "男"', '"sex": "2"')
    # a valid catalog that lost its dataset description
    _edit(ex / "catalog" / "valid" / "minimal-catalog.ttl", "dct:description", "dct:abstract")
    # an invalid catalog that now breaks one more rule than it names
    _edit(ex / "catalog" / "invalid" / "missing-chinese-title.ttl", 'dct:identifier "101001001/000001"',
          'dct:identifier "not-a-code"')
    return {
        "Person/valid/beijing-chaoyang.json": "expected valid",
        "Person/invalid/sex__In.json": "the record was accepted",
        "catalog/valid/minimal-catalog.ttl": "expected to conform",
        "catalog/invalid/missing-chinese-title.ttl": "reported more than expected",
    }


def _ids_by_example(cases: list, manifests: Path) -> dict[str, str]:  # type: ignore[type-arg]
    ex = (manifests.parent.parent / "ontology" / "examples").resolve()
    out = {}
    for c in cases:
        path = file_of(c.action)
        assert path is not None
        out[path.resolve().relative_to(ex).as_posix()] = c.id
    return out


def test_broken_data_fails_exactly_the_broken_cases(kit_copy: Path, full_standard: Path) -> None:
    why = _break_copy(kit_copy)
    cases = load_manifests([kit_copy / "records.ttl", kit_copy / "catalogs.ttl"])
    ids = _ids_by_example(cases, kit_copy)
    run = run_cases(cases, RunOptions(engine="shacl", standard_dir=full_standard))
    failed = {r.case.id: r.message for r in run.results if r.outcome is Outcome.FAILED}
    assert set(failed) == {ids[k] for k in why}
    for example, reason in why.items():
        assert reason in failed[ids[example]], failed[ids[example]]
    assert all(r.outcome is Outcome.PASSED for r in run.results if r.case.id not in failed)
    assert run.exit_code == 1 and not run.conforms


def test_run_cli_over_the_broken_copy_writes_reports_and_exits_1(kit_copy: Path, full_standard: Path,
                                                                 tmp_path: Path) -> None:
    _break_copy(kit_copy)
    out = tmp_path / "reports"
    r = CliRunner().invoke(cli, [
        "run", "--manifest", str(kit_copy / "records.ttl"), "--only", "DAT", "--engine", "fast",
        "--standard", str(full_standard), "--out", str(out),
    ])
    n = len(load_manifests([kit_copy / "records.ttl"]))
    assert r.exit_code == 1, r.output
    assert f"DOES NOT CONFORM: 2 of {n} mandatory case(s) did not pass (2 FAILED)" in r.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["failed"] == 2 and summary["counts"]["passed"] == n - 2
    assert {"junit.xml", "earl.ttl", "summary.json"} <= {p.name for p in out.iterdir()}


def test_run_cli_passes_with_the_division_list(full_standard: Path, tmp_path: Path,
                                              data_manifests: list[Path]) -> None:
    n = len(load_manifests(data_manifests[:1]))
    r = CliRunner().invoke(cli, ["run", "--only", "DAT", "--engine", "fast", "--standard", str(full_standard),
                                 "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert f"CONFORMS: all {n} mandatory case(s) passed" in r.output
