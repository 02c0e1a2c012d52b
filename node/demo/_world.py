"""Setting up the demo's federation on disk: the standard, the CA, three nodes, their lists.

Everything is made with the operator's own commands (``shulian standard import-divisions``,
``shulian ca init``, ``shulian init``) and then configured the way an operator edits
node.toml: datasets, peers, Kafka, the standard's folder and the responsibility list.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.demo._data import (
    COUNTY,
    DEPARTMENTS,
    HRSS,
    PIPL_34,
    PIPL_BASIC,
    PSB,
    SOCIAL_INSURANCE_81,
    Department,
    datasets_for,
)
from node.demo._procs import CliRun
from node.errors import InputError, ShulianError

__all__ = ["NodeSite", "World", "build_world", "find_division_csvs", "FEDERATION_NAME"]

log = logging.getLogger(__name__)

FEDERATION_NAME = "石家庄市政务数据共享联盟"
_DIVISION_FILES = ("provinces.csv", "cities.csv", "areas.csv")


@dataclass
class NodeSite:
    dept: Department
    dir: Path
    port: int

    @property
    def config(self) -> Path:
        return self.dir / "node.toml"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls(self) -> tuple[Path, Path, Path]:
        t = self.dir / "tls"
        return t / "ca.pem", t / "node.pem", t / "node.key"

    @property
    def store(self) -> Path:
        return self.dir / "data" / "store.db"

    @property
    def policy(self) -> Path:
        return self.dir / "policy" / "responsibility-list.ttl"


@dataclass
class World:
    out: Path
    standard: Path
    ca: Path
    sites: dict[str, NodeSite]
    bootstrap: str | None
    divisions: int = 0
    divisions_from: str = ""
    commands: list[str] = field(default_factory=list)

    def site(self, dept: Department) -> NodeSite:
        return self.sites[dept.key]


def find_division_csvs(given: Path | None, start: Path, package_root: Path) -> list[Path]:
    """The national division list: ``given`` (a folder or a file), else ``../shared/data/divisions``
    beside the working directory (or one of its parents) or beside the repository."""
    if given is not None:
        files = sorted(given.glob("*.csv")) if given.is_dir() else [given]
        if not files:
            raise InputError(f"--divisions {given}: no CSV files there")
        return [f.resolve() for f in files]
    for base in (start, *start.parents, package_root):
        folder = base / ".." / "shared" / "data" / "divisions"
        if folder.is_dir():
            found = [folder / n for n in _DIVISION_FILES if (folder / n).is_file()]
            if found:
                return [p.resolve() for p in found]
    return []


Cli = Callable[[Sequence[str]], CliRun]


def _rel(path: Path, base: Path) -> str:
    """How the commands name a path: relative to the demo's folder, where they run."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _checked(run: CliRun) -> CliRun:
    if run.code != 0:
        raise ShulianError(f"`{run.shown}` failed (exit {run.code}): {(run.stderr or run.stdout).strip()[-800:]}")
    return run


def _policy(dept: Department) -> Any:
    from node.policy import DatasetPolicy, ResponsibilityList, SharingType

    title = f"{dept.name}政务数据共享责任清单"
    entries: tuple[DatasetPolicy, ...]
    if dept is PSB:
        entries = (
            DatasetPolicy("population-basic", SharingType.UNCONDITIONAL, title="人口基础信息（基本项）",
                          withheld=("identityNumber", "birthDate"), basis=(PIPL_BASIC,)),
            DatasetPolicy("population", SharingType.CONDITIONAL, title="人口基础信息（完整）", basis=(PIPL_34,),
                          conditions=("仅向经审核同意的部门提供，限于申请的使用用途和信息项",)),
        )
    elif dept is HRSS:
        entries = (DatasetPolicy("insurance-enrollment", SharingType.CONDITIONAL, title="社会保险参保信息",
                                 basis=(SOCIAL_INSURANCE_81,),
                                 conditions=("仅向经审核同意的部门提供，用于法定职责范围内的核验",)),)
    else:
        entries = (DatasetPolicy("household-register", SharingType.CONDITIONAL, title="正定县户籍人口登记信息",
                                 basis=(PIPL_34,), conditions=("仅向上级主管部门及经审核同意的部门提供",)),)
    return ResponsibilityList(entries, provider_code=dept.code, title=title)


def _peers(dept: Department, sites: dict[str, NodeSite]) -> list[dict[str, str]]:
    wanted = {PSB.key: (COUNTY,), HRSS.key: (PSB,), COUNTY.key: (PSB, HRSS)}[dept.key]
    return [{"code": d.code, "address": sites[d.key].address, "name": d.name} for d in wanted]


def build_world(out: Path, ports: dict[str, int], bootstrap: str | None, division_csvs: list[Path],
                cli: Cli) -> World:
    """Create the standard copy, the CA, the three nodes and their configuration under ``out``."""
    from node.config import load_config, write_config_file
    from node.policy import dump_list
    from node.standard._paths import ontology_dir

    standard = out / "standard"
    shutil.copytree(ontology_dir(), standard, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    world = World(out=out, standard=standard, ca=out / "ca", sites={}, bootstrap=bootstrap)
    if not division_csvs:
        # the product ships provinces only and the national list is not ours to copy: ask for it
        raise InputError(
            "the national division list was not found (looked for ../shared/data/divisions beside the "
            "repository); give --divisions DIR with its provinces.csv, cities.csv and areas.csv"
        )
    world.divisions_from = str(division_csvs[0].parent)
    run = _checked(cli(["standard", "import-divisions", *(_rel(c, out) for c in division_csvs), "--standard",
                        _rel(standard, out)]))
    world.commands.append(run.shown)
    from node.standard.divisions import load_divisions

    world.divisions = len(load_divisions(standard))
    world.commands.append(_checked(cli(["ca", "init", _rel(world.ca, out), "--name", f"{FEDERATION_NAME}CA"])).shown)
    for dept in DEPARTMENTS:
        site = NodeSite(dept, out / "nodes" / dept.key, ports[dept.key])
        world.sites[dept.key] = site
        run = _checked(cli(["init", _rel(site.dir, out), "--department", dept.name, "--code", dept.code,
                            "--level", dept.level, "--division", dept.division, "--listen", site.address,
                            "--address", site.address, "--ca-dir", _rel(world.ca, out)]))
        world.commands.append(run.shown)
    kafka_ok = bootstrap is not None
    for dept in DEPARTMENTS:
        site = world.site(dept)
        data = tomllib.loads(site.config.read_text(encoding="utf-8"))
        data["node"]["standard"] = os.path.relpath(standard, site.dir)
        data["policy"]["responsibility_list"] = os.path.relpath(site.policy, site.dir)
        data["datasets"] = datasets_for(dept, kafka=kafka_ok)
        data["peers"] = _peers(dept, world.sites)
        if kafka_ok and dept is not COUNTY:
            kafka: dict[str, Any] = {"bootstrap_servers": [bootstrap]}
            if dept is HRSS:
                kafka["subscriptions"] = [{"provider": PSB.code, "dataset": "population-basic"},
                                          {"provider": PSB.code, "dataset": "population"}]
            data["kafka"] = kafka
        write_config_file(site.config, data)
        site.policy.parent.mkdir(parents=True, exist_ok=True)
        dump_list(_policy(dept), site.policy)
        load_config(site.config, env={}, check_files=True)  # a mistake here is the demo's, not the user's
    return world


def until_next_year() -> dt.date:
    today = dt.date.today()
    return dt.date(today.year + 1, 12, 31)
