"""`shulian validate --catalog` gives the catalog profile's verdict (the demo is tested in tests/demo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from node.standard._paths import ontology_dir

CATALOGS = ontology_dir() / "examples" / "catalog"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=240)


def test_validate_catalog_cli(tmp_path: Path) -> None:
    valid = sorted((CATALOGS / "valid").glob("*.ttl"))[0]
    invalid = sorted((CATALOGS / "invalid").glob("*.ttl"))[0]
    r = _cli("validate", "--catalog", str(valid), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "conforms to" in r.stdout
    r = _cli("validate", "--catalog", str(invalid), "--report", "json", cwd=tmp_path)
    assert r.returncode == 1
    assert json.loads(r.stdout)["conforms"] is False
    r = _cli("validate", "--catalog", str(tmp_path / "nope.ttl"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
