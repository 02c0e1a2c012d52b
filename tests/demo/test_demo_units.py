"""The demo's parts that need no running federation: its data, its folder, its optional components."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from node.config import config_from_dict, is_valid_credit_code, new_config_dict
from node.demo._context import component
from node.demo._data import DEPARTMENTS, datasets_for, seed_enrollments, seed_people
from node.demo._narrate import Skip
from node.demo._procs import Processes
from node.demo._run import MARKER, _prepare
from node.demo._world import find_division_csvs
from node.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def test_department_codes_are_valid_credit_codes_and_distinct() -> None:
    codes = [d.code for d in DEPARTMENTS]
    assert all(is_valid_credit_code(c) for c in codes) and len(set(codes)) == len(codes)


def test_seed_records_conform_to_the_standard_with_real_divisions(full_standard: Path) -> None:
    from node.validation import get_validator

    v = get_validator("fast", full_standard)
    for rec in seed_people():
        rep = v.validate(rec, "Person")
        assert rep.valid and not rep.violations, (rec, rep.violations)
    for rec in seed_enrollments():
        rep = v.validate(rec, "SocialInsuranceEnrollment")
        assert rep.valid, (rec, rep.violations)


def test_demo_records_use_real_division_codes(shared_data: Path) -> None:
    import csv

    with (shared_data / "divisions" / "areas.csv").open(encoding="utf-8") as fh:
        national = {row["code"] for row in csv.DictReader(fh)}
    assert {p["householdDivision"] for p in seed_people()} <= national


def test_dataset_tables_make_a_valid_configuration(tmp_path: Path) -> None:
    for dept in DEPARTMENTS:
        data = new_config_dict(name=dept.name, code=dept.code, level=dept.level, division=dept.division,
                               listen="127.0.0.1:0", federation="federation.json")
        data["datasets"] = datasets_for(dept, kafka=True)
        cfg = config_from_dict(data, path=tmp_path / "node.toml")
        assert all(ds.catalog.sharing_type in ("unconditional", "conditional") for ds in cfg.datasets)


def test_the_demo_folder_is_emptied_only_when_it_is_a_demo_folder(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete", encoding="utf-8")
    with pytest.raises(InputError, match="not a previous demo's output"):
        _prepare(precious)
    assert (precious / "thesis.txt").exists()
    old = tmp_path / "old-demo"
    (old / "nodes" / "psb").mkdir(parents=True)
    (old / MARKER).write_text("", encoding="utf-8")
    (old / "summary.json").write_text("{}", encoding="utf-8")
    _prepare(old)
    assert sorted(p.name for p in old.iterdir()) == [MARKER]
    fresh = tmp_path / "new" / "demo"
    _prepare(fresh)
    assert (fresh / MARKER).is_file()


def test_a_missing_component_is_a_skip_naming_it() -> None:
    with pytest.raises(Skip, match="frobnicator not installed"):
        component("shulian_no_such_package.frob", "frobnicator")
    assert component("node.errors", "errors").EXIT_OK == 0


def test_the_division_list_is_found_beside_the_repository(shared_data: Path, tmp_path: Path) -> None:
    # start from the repository itself: a walk up from a temporary folder may meet another
    # machine-wide ../shared first (CI has one), which is the next test's subject
    found = find_division_csvs(None, REPO, REPO)
    assert [p.name for p in found] == ["provinces.csv", "cities.csv", "areas.csv"]
    assert found[0].parent == (shared_data / "divisions").resolve()
    one = find_division_csvs(shared_data / "divisions" / "areas.csv", tmp_path, REPO)
    assert one == [(shared_data / "divisions" / "areas.csv").resolve()]
    with pytest.raises(InputError, match="no CSV files"):
        find_division_csvs(tmp_path, tmp_path, REPO)


def test_a_division_list_beside_the_working_directory_comes_before_the_repositorys(tmp_path: Path) -> None:
    mine = tmp_path / "site" / "shared" / "data" / "divisions"
    mine.mkdir(parents=True)
    (mine / "provinces.csv").write_text("code,name\n", encoding="utf-8")
    work = tmp_path / "site" / "work" / "deeper"
    work.mkdir(parents=True)
    found = find_division_csvs(None, work, REPO)
    assert found == [(mine / "provinces.csv").resolve()]


@pytest.mark.integration
def test_stopping_a_child_stops_its_whole_process_group(tmp_path: Path) -> None:
    procs = Processes(dict(os.environ))
    # a shell that starts a grandchild: both are in the child's own process group
    child = procs.start("sh", ["sh", "-c", "sleep 120 & echo $! > grandchild.pid; wait"], tmp_path / "sh.log",
                        cwd=tmp_path)
    pid_file = tmp_path / "grandchild.pid"
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    grandchild = int(pid_file.read_text())
    assert os.getpgid(grandchild) == child.proc.pid  # its own group, not the test runner's
    codes = procs.stop_all()
    assert codes["sh"] is not None and not procs.children
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(grandchild)], capture_output=True, text=True)
        if state.stdout.strip().startswith("Z"):  # a zombie: dead, waiting for init to reap it
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the grandchild {grandchild} outlived its group's stop")
