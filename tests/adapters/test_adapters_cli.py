"""``shulian map`` and ``shulian map suggest`` through the real CLI root: exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli

MAPPING = """
[target]
type = "LegalEntity"
[id]
template = "le-{creditCode}"
[fields.creditCode]
column = "code"
normalise = ["credit_code"]
[fields.name]
column = "name"
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def small(tmp_path: Path, write_mapping: Callable[..., Path]) -> tuple[Path, Path]:
    src = tmp_path / "in.csv"
    src.write_text("code,name\n91110000600037341L,甲\n91110108551385082Q,乙\n", encoding="utf-8")
    return write_mapping(MAPPING), src


def test_default_command_maps_and_exits_0(small: tuple[Path, Path], tmp_path: Path) -> None:
    mapping, src = small
    out, rejects, report = tmp_path / "out.jsonl", tmp_path / "rej.csv", tmp_path / "report.json"
    result = invoke("map", "--mapping", str(mapping), str(src), "-o", str(out), "--rejects", str(rejects),
                    "--report", str(report), "--no-validate")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["rows_in"], data["rows_out"], data["rows_rejected"], data["balanced"]) == (2, 2, 0, True)
    assert data["validated"] is False
    assert "NOT validated" in result.stderr
    assert invoke("map", "run", "--mapping", str(mapping), str(src), "-o", str(out), "--no-validate").exit_code == 0
    assert (tmp_path / "out.rejects.csv").is_file()  # default rejects path beside the output


def test_validated_run_with_rejects_exits_1(small: tuple[Path, Path], tmp_path: Path, full_standard: Path) -> None:
    mapping, src = small
    src.write_text("code,name\n91110000600037341L,甲\n91110000600037341M,乙\n", encoding="utf-8")
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rej.csv"
    result = invoke("map", "--mapping", str(mapping), str(src), "-o", str(out), "--rejects", str(rejects),
                    "--standard", str(full_standard))  # fmt: skip
    assert result.exit_code == 1
    assert "2 rows rejected" in result.stderr  # LegalEntity needs more than these two columns
    lines = rejects.read_text(encoding="utf-8-sig").splitlines()
    assert any(line.startswith("3,code,91110000600037341M,creditCode,validation,") for line in lines)
    assert not any(line.startswith("2,code,") for line in lines)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("column = \"code\"", "column = \"kode\""), r"[fields.creditCode.column] column 'kode' is not in the input"),
        (("type = \"LegalEntity\"", "type = \"Firm\""), "[target.type] unknown record type 'Firm'"),
        (("[fields.name]", "[fields.name]\nnormalise = [\"nope\"]"), "[fields.name.normalise[0]] unknown normaliser"),
    ],
)
def test_mapping_errors_exit_2_with_one_line(small: tuple[Path, Path], tmp_path: Path,
                                             change: tuple[str, str], expected: str) -> None:  # fmt: skip
    mapping, src = small
    mapping.write_text(MAPPING.replace(*change), encoding="utf-8")
    result = invoke("map", "--mapping", str(mapping), str(src), "-o", str(tmp_path / "o.jsonl"), "--no-validate")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(mapping) in lines[0] and expected in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_input_errors_exit_2(small: tuple[Path, Path], tmp_path: Path) -> None:
    mapping, _ = small
    result = invoke("map", "--mapping", str(mapping), str(tmp_path / "missing.csv"), "-o", str(tmp_path / "o.jsonl"),
                    "--no-validate")  # fmt: skip
    assert result.exit_code == 2 and "missing.csv" in result.stderr
    result = invoke("map", "--mapping", str(tmp_path / "nope.toml"), str(tmp_path / "x.csv"), "-o", "o.jsonl")
    assert result.exit_code == 2 and "nope.toml" in result.stderr
    result = invoke("map", "--mapping", str(mapping), str(tmp_path / "x.csv"), "-o", str(tmp_path / "a.csv"),
                    "--rejects", str(tmp_path / "a.csv"))  # fmt: skip
    assert result.exit_code == 2 and "different files" in result.stderr


def test_division_list_missing_is_a_named_error(tmp_path: Path, write_mapping: Callable[..., Path],
                                                shared_data: Path) -> None:  # fmt: skip
    mapping = write_mapping(MAPPING + "[fields.registrationDivision]\ncolumn = \"place\"\nnormalise = [\"division\"]\n")
    src = tmp_path / "in.csv"
    src.write_text("code,name,place\n91110000600037341L,甲,北京市朝阳区\n", encoding="utf-8")
    empty_standard = tmp_path / "std"
    (empty_standard / "codelists").mkdir(parents=True)
    result = invoke("map", "--mapping", str(mapping), str(src), "-o", str(tmp_path / "o.jsonl"), "--no-validate",
                    "--standard", str(empty_standard))  # fmt: skip
    assert result.exit_code == 2 and "import-divisions" in result.stderr
    result = invoke("map", "--mapping", str(mapping), str(src), "-o", str(tmp_path / "o.jsonl"), "--no-validate",
                    "--divisions", str(shared_data / "divisions"))  # fmt: skip
    assert result.exit_code == 0
    assert json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))["registrationDivision"] == "110105"


def test_help_shows_examples() -> None:
    for args in (["map", "--help"], ["map", "run", "--help"], ["map", "suggest", "--help"]):
        result = invoke(*args)
        assert result.exit_code == 0 and "Example" in result.output
    assert "suggest" in invoke("map", "--help").output


def test_suggest_writes_a_mapping_that_runs(tmp_path: Path, full_standard: Path) -> None:
    src = tmp_path / "企业.csv"
    src.write_text("统一社会信用代码,企业名称,备注\n91110000600037341L,甲公司,无\n91110108551385082Q,乙公司,\n",
                   encoding="gb18030")  # fmt: skip
    mapping = tmp_path / "m.toml"
    result = invoke("map", "suggest", str(src), "--type", "LegalEntity", "-o", str(mapping), "--standard",
                    str(full_standard))  # fmt: skip
    assert result.exit_code == 0, result.output
    text = mapping.read_text(encoding="utf-8")
    assert 'encoding = "gb18030"' in text and "[fields.creditCode]" in text and "confidence" in text
    assert "column '备注': not placed" in text
    out = tmp_path / "o.jsonl"
    result = invoke("map", "--mapping", str(mapping), str(src), "-o", str(out), "--no-validate")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == [
        "le-91110000600037341L", "le-91110108551385082Q"]  # fmt: skip
    as_json = invoke("map", "suggest", str(src), "--type", "LegalEntity", "--json", "--standard", str(full_standard))
    placed = {c["column"]: c["property"] for c in json.loads(as_json.stdout)["columns"]}
    assert placed == {"统一社会信用代码": "creditCode", "企业名称": "name", "备注": None}
    bad = invoke("map", "suggest", str(src), "--type", "Firm")
    assert bad.exit_code == 2 and "Firm" in bad.stderr


@pytest.mark.integration
def test_the_documented_command_line_in_a_real_process(small: tuple[Path, Path], tmp_path: Path) -> None:
    mapping, src = small
    cmd = [sys.executable, "-c", "from node.cli import main; main()", "map", "--mapping", str(mapping), str(src),
           "-o", str(tmp_path / "OUT.jsonl"), "--rejects", str(tmp_path / "REJECTS.csv"),
           "--report", str(tmp_path / "REPORT.json"), "--no-validate"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "REPORT.json").read_text(encoding="utf-8"))["rows_out"] == 2
    mapping.write_text("[target\n", encoding="utf-8")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
