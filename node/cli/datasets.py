"""``shulian datasets``: list, add and load the node's datasets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from node.cli._common import (
    config_option,
    local_time,
    node_config,
    open_store,
    operator_name,
    print_table,
    standard_option,
)
from node.cli.init import cli_errors
from node.errors import EXIT_FINDINGS

if TYPE_CHECKING:
    from node.catalog.registry import LoadResult, SourceLine

__all__ = ["datasets"]

# inputs larger than this get a progress bar (when standard error is a terminal)
_PROGRESS_BYTES = 1 << 20


@click.group("datasets")
def datasets() -> None:
    """The node's datasets: list them with their record counts, add one (to node.toml and the
    store), load records into one (validated, stored, with evidence).

    \b
    Example:
      shulian datasets list --config node.toml
      shulian datasets add population --config node.toml --type Person --title-zh 户籍人口基本信息 \\
          --title-en "Registered population" --description "户籍人口的身份号码、姓名、性别、民族、出生日期、户籍地" \\
          --resource-code 101001001/000001 --update-cycle 每日 --sharing-type 有条件共享 \\
          --sharing-conditions "仅限履行法定职责所必需" --sharing-basis "《个人信息保护法》第三十四条"
      shulian datasets load people.jsonl --config node.toml --dataset population

    Safe while the node runs (the store is SQLite in WAL mode; writers wait their turn).
    Exit codes: 0 ok, 1 records rejected (load), 2 bad input or configuration, 3 the store is busy
    or unavailable.
    """


@datasets.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@cli_errors
def list_(config_path: Path | None, as_json: bool) -> None:
    """List datasets: configured ones (node.toml) and any the store holds without configuration.

    \b
    Example:
      shulian datasets list --config node.toml --json
    """
    from node.catalog.registry import dataset_rows

    cfg = node_config(config_path)
    store = open_store(cfg, create=False)
    try:
        rows = dataset_rows(cfg, store)
    finally:
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return

    def where(r: dict[str, object]) -> str:
        if r["configured"] and r["registered"]:
            return "config + store"
        return "config only" if r["configured"] else "store only"

    print_table(f"datasets of {cfg.department.name} ({cfg.department.code})",
                ["数据集 dataset", "名称 title", "记录类型 record type", "资源代码 resource code",
                 "共享类型 sharing", "记录数 records", "最后更新 last modified", "in"],
                [[r["id"], r["title_zh"] or "—", r["record_type"] or "—", r["resource_code"] or "—",
                  r["sharing_type_zh"] or "—", str(r["records"]), local_time(r["modified"]), where(r)]
                 for r in rows])


@datasets.command("add")
@click.argument("dataset_id")
@config_option
@click.option("--type", "record_type", required=True,
              type=click.Choice(["Person", "LegalEntity", "SocialInsuranceEnrollment", "ElectronicLicense"]),
              help="The record type of the standard its records have.")
@click.option("--title-zh", required=True, help="信息资源名称 (Chinese).")
@click.option("--title-en", required=True, help="English title.")
@click.option("--description", required=True, help="信息资源摘要: what the dataset holds.")
@click.option("--description-en", default="", help="English description.")
@click.option("--resource-code", required=True, help="信息资源代码, e.g. 101001001/000001.")
@click.option("--update-cycle", required=True, help="更新周期: 实时 每日 每周 每月 每季度 每年 不定期 (or realtime, daily ...).")
@click.option("--sharing-type", required=True, help="共享类型: 无条件共享, 有条件共享 or 不予共享.")
@click.option("--sharing-conditions", default="", help="共享条件 (required when conditional).")
@click.option("--sharing-basis", default="", help="依据: legal or policy basis (required unless unconditional).")
@click.option("--sharing-method", default="", help="共享方式 (default 系统对接): 系统对接 共享平台 邮件 拷盘 介质交换 其他.")
@click.option("--open-to-public", is_flag=True, help="开放: the dataset is open to the public.")
@click.option("--keyword", "keywords", multiple=True, help="A keyword (repeatable).")
@click.option("--kafka-publish", is_flag=True, help="Publish every change to subscribers over Kafka.")
@standard_option
@cli_errors
def add(dataset_id: str, config_path: Path | None, record_type: str, title_zh: str, title_en: str,
        description: str, description_en: str, resource_code: str, update_cycle: str, sharing_type: str,
        sharing_conditions: str, sharing_basis: str, sharing_method: str, open_to_public: bool,
        keywords: tuple[str, ...], kafka_publish: bool, standard_dir: str | None) -> None:
    """Add a dataset: append its [[datasets]] table to node.toml (comments and layout kept) AND
    register it in the store. Nothing is written unless the configuration still loads and the
    catalog with the new dataset passes the catalog profile. A running node serves the new
    dataset in its catalog after its next start.

    \b
    Example:
      shulian datasets add licences --config node.toml --type ElectronicLicense \\
          --title-zh 居住证电子证照信息 --title-en "Residence permits" --description "居住证电子证照" \\
          --resource-code 105002/000002 --update-cycle 实时 --sharing-type 无条件共享 --sharing-method 共享平台
    """
    from node.catalog.registry import add_dataset, dataset_table, register_dataset

    path = node_config(config_path).path  # the current file must load before it is edited
    table = dataset_table(
        id=dataset_id, record_type=record_type, title_zh=title_zh, title_en=title_en, description=description,
        description_en=description_en, resource_code=resource_code, update_cycle=update_cycle,
        sharing_type=sharing_type, sharing_conditions=sharing_conditions, sharing_basis=sharing_basis,
        sharing_method=sharing_method, open_to_public=open_to_public, keywords=keywords,
        kafka_publish=kafka_publish)
    add_dataset(path, table, standard_dir=standard_dir)
    cfg = node_config(path)  # with environment overrides, e.g. the store's location
    store = open_store(cfg, create=True)
    assert store is not None
    try:
        register_dataset(store, cfg.dataset(dataset_id))
    finally:
        store.close()
    click.echo(f"added dataset {dataset_id} ({record_type}, {resource_code}) to {path} and registered it in "
               f"the store {cfg.store}; restart the node to publish it in its catalog")


def _lines(path: Path) -> Iterator[SourceLine]:
    from node.catalog.registry import SourceLine
    from node.cli.validate import read_records

    for item in read_records(str(path)):
        yield SourceLine(item.line, item.record, item.error)


def _count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


def _print_result(result: LoadResult, dataset: str, source: Path) -> None:
    for r in result.rejected:
        click.echo(f"{source}:{r.line} {r.id or '(no id)'}: REJECTED: {r.reason}")
        for v in r.violations:
            click.echo(f"    {v.path}  [{v.constraint}]  {v.message_zh} / {v.message_en}")
    click.echo(f"{dataset}: {result.read} read, {result.accepted} stored ({result.changed} new or changed), "
               f"{len(result.rejected)} rejected; {result.batches} batch(es), evidence appended")


@datasets.command("load")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@config_option
@click.option("--dataset", "dataset_id", required=True, help="The configured dataset to load into.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Records per transaction (and per evidence entry).")
@click.option("--operator", default=None, help="Who loads (the evidence's actor; default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@standard_option
@cli_errors
def load(file: Path, config_path: Path | None, dataset_id: str, batch_size: int, operator: str | None,
         as_json: bool, standard_dir: str | None) -> None:
    """Load records (JSON Lines, or a JSON array) into a dataset: each is validated with the fast
    engine, valid ones are stored in batches, rejects are reported with their line and
    violations, and each batch appends push.accepted / push.rejected evidence. Exit 1 if any
    record was rejected (the valid ones are stored all the same).

    \b
    Example:
      shulian datasets load people.jsonl --config node.toml --dataset population
      shulian datasets load people.jsonl --config node.toml --dataset population --standard ./my-standard
    """
    from rich.console import Console
    from rich.progress import Progress

    from node.catalog.registry import load_records
    from node.evidence import EvidenceLog
    from node.pki import load_signing_key
    from node.validation import get_validator

    cfg = node_config(config_path)
    ds = cfg.dataset(dataset_id)
    validator = get_validator("fast", standard_dir=standard_dir or cfg.standard)
    key = load_signing_key(cfg.signing_key)
    console = Console(stderr=True)
    show_progress = console.is_terminal and file.stat().st_size > _PROGRESS_BYTES
    store = open_store(cfg, create=True)
    assert store is not None
    try:
        with Progress(console=console, disable=not show_progress, transient=True) as progress:
            task = progress.add_task(f"loading {file.name}", total=_count_lines(file) if show_progress else None)
            result = load_records(store, EvidenceLog(store, key), ds, _lines(file), validator=validator,
                                  actor=operator_name(operator), source=file.name, batch_size=batch_size,
                                  progress=lambda n: progress.advance(task, n))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"dataset": ds.id, "file": str(file), **result.to_dict()}, ensure_ascii=False,
                              indent=2))
    else:
        _print_result(result, ds.id, file)
    if result.rejected:
        raise SystemExit(EXIT_FINDINGS)
