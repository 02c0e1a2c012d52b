"""Datasets of a node: registering them (configuration file and store) and loading records into them.

    from node.catalog.registry import add_dataset, register_dataset, load_records
    cfg = add_dataset(Path("node.toml"), dataset_table(id="population", record_type="Person", ...))
    register_dataset(store, cfg.dataset("population"))
    result = load_records(store, evidence, cfg.dataset("population"), lines, validator=v, actor="operator:王")

A dataset is *configured* when ``node.toml`` has its ``[[datasets]]`` table (that is what the
catalog publishes and what the daemon serves after its next start) and *registered* when the
store knows it (records can be stored). :func:`add_dataset` does the first, appending the new
table to the file so comments and layout stay as they were; :func:`register_dataset` the second.

Loading validates every record with the fast engine, stores the valid ones with
``store.upsert_many`` one batch per transaction, and appends the batch's evidence
(``push.accepted`` / ``push.rejected``) in the same commit. The store is SQLite in WAL mode with
a busy timeout, so this runs safely next to a running daemon: each batch waits its turn for the
write lock and readers are never blocked.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.catalog._stats import dataset_stats
from node.catalog.builder import build_catalog, sharing_label
from node.errors import AlreadyExists, ConfigError, InputError

if TYPE_CHECKING:
    from node.config import DatasetConfig, NodeConfig
    from node.evidence import EvidenceLog
    from node.store import Store
    from node.validation import RecordReport, Validator, Violation

__all__ = [
    "dataset_table",
    "add_dataset",
    "register_dataset",
    "dataset_rows",
    "SourceLine",
    "Reject",
    "LoadResult",
    "load_records",
    "DEFAULT_BATCH",
]

log = logging.getLogger(__name__)

DEFAULT_BATCH = 1000


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------


def dataset_table(*, id: str, record_type: str, title_zh: str, title_en: str, description: str,
                  resource_code: str, update_cycle: str, sharing_type: str, sharing_conditions: str = "",
                  sharing_basis: str = "", sharing_method: str = "", open_to_public: bool = False,
                  keywords: Iterable[str] = (), description_en: str = "", kafka_publish: bool = False
                  ) -> dict[str, Any]:
    """A ``[[datasets]]`` table as written to node.toml (empty optional keys left out)."""
    catalog: dict[str, Any] = {
        "title_zh": title_zh, "title_en": title_en, "description": description, "resource_code": resource_code,
        "update_cycle": update_cycle, "sharing_type": sharing_type,
    }
    optional: dict[str, Any] = {
        "description_en": description_en, "sharing_conditions": sharing_conditions,
        "sharing_basis": sharing_basis, "sharing_method": sharing_method, "keywords": [k for k in keywords if k],
    }
    catalog.update({k: v for k, v in optional.items() if v})
    if open_to_public:
        catalog["open_to_public"] = True
    table: dict[str, Any] = {"id": id, "record_type": record_type}
    if kafka_publish:
        table["kafka_publish"] = True
    table["catalog"] = catalog
    return table


def add_dataset(config_path: Path, table: Mapping[str, Any], *, env: Mapping[str, str] | None = None,
                standard_dir: str | Path | None = None) -> NodeConfig:
    """Append a ``[[datasets]]`` table to the configuration file, atomically, and return the new config.

    Nothing is written unless the whole file still loads and the node's catalog, with the new
    dataset, passes the catalog profile. Raises :class:`AlreadyExists` when the id is configured,
    :class:`ConfigError` naming the bad key, or :class:`CatalogProfileError`.
    """
    import tomli_w

    from node.config import config_from_dict

    path = Path(config_path)
    try:
        text = path.read_text(encoding="utf-8")
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError as exc:
        raise ConfigError("configuration file not found", file=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file: {exc}", file=str(path)) from exc
    try:
        current = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from exc
    existing = current.get("datasets", [])
    if isinstance(existing, list) and any(isinstance(d, dict) and d.get("id") == table.get("id")
                                          for d in existing):
        raise AlreadyExists(f"dataset {table.get('id')!r} is already configured in {path}")
    addition = tomli_w.dumps({"datasets": [dict(table)]})
    new_text = text + ("" if text.endswith("\n") or not text else "\n") + "\n" + addition
    try:
        data = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot append a [[datasets]] table ({exc}); add the dataset by hand",
                          file=str(path)) from exc
    cfg = config_from_dict(data, path=path.resolve(), env=env or {})
    build_catalog(cfg, None, standard_dir=standard_dir)  # the catalog must still pass the profile
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(new_text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the configuration file: {exc.strerror}", file=str(path)) from exc
    log.info("dataset %s added to %s", table.get("id"), path)
    return cfg


def register_dataset(store: Store, ds: DatasetConfig) -> None:
    """Register (or update) a configured dataset in the store: its record type, whether changes
    go to Kafka (the outbox), and its catalog metadata."""
    from dataclasses import asdict

    store.ensure_dataset(ds.id, ds.record_type, publish=ds.kafka_publish, metadata=asdict(ds.catalog))


def dataset_rows(cfg: NodeConfig, store: Store | None) -> list[dict[str, Any]]:
    """One row per dataset, configured ones first (in file order), then those only the store knows."""
    rows: list[dict[str, Any]] = []
    stored = {d.id: d for d in store.list_datasets()} if store is not None else {}
    for ds in cfg.datasets:
        stats = dataset_stats(store, ds.id)
        rows.append({
            "id": ds.id,
            "title_zh": ds.catalog.title_zh,
            "title_en": ds.catalog.title_en,
            "record_type": ds.record_type,
            "resource_code": ds.catalog.resource_code,
            "sharing_type": ds.catalog.sharing_type,
            "sharing_type_zh": sharing_label(ds.catalog.sharing_type),
            "records": stats.records,
            "modified": stats.modified.isoformat() if stats.modified else None,
            "configured": True,
            "registered": ds.id in stored,
        })
    for info in stored.values():
        if any(ds.id == info.id for ds in cfg.datasets):
            continue
        stats = dataset_stats(store, info.id)
        rows.append({
            "id": info.id, "title_zh": "", "title_en": "", "record_type": info.record_type,
            "resource_code": None, "sharing_type": None, "sharing_type_zh": None,
            "records": stats.records, "modified": stats.modified.isoformat() if stats.modified else None,
            "configured": False, "registered": True,
        })
    return rows


# ---------------------------------------------------------------------------------------------
# loading records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceLine:
    """One input record: its line number, the decoded value, or why it could not be decoded."""

    line: int
    record: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    line: int
    id: str | None
    reason: str  # one line: the error, or "path: constraint; ..." for violations
    violations: tuple[Violation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.id, "reason": self.reason,
                "violations": [v.to_json() for v in self.violations]}


@dataclass
class LoadResult:
    read: int = 0
    accepted: int = 0  # valid records stored (same content again counts, it is a no-op in the store)
    changed: int = 0  # of those, records that got a new version
    batches: int = 0
    rejected: list[Reject] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "accepted": self.accepted, "changed": self.changed, "batches": self.batches,
                "rejected": [r.to_dict() for r in self.rejected]}


def _reject(item: SourceLine, report: RecordReport | None) -> Reject:
    if item.error is not None or report is None:
        return Reject(item.line, None, f"unreadable: {item.error}")
    if report.error:
        return Reject(item.line, report.id, report.error)
    bad = tuple(v for v in report.violations if v.severity == "Violation")
    return Reject(item.line, report.id, report.summary(), bad)


def load_records(store: Store, evidence: EvidenceLog, ds: DatasetConfig, lines: Iterable[SourceLine], *,
                 validator: Validator, actor: str, source: str, batch_size: int = DEFAULT_BATCH,
                 progress: Callable[[int], None] | None = None) -> LoadResult:
    """Validate and store records, one transaction per batch with its evidence entries.

    The dataset is registered in the store first if it is not. ``progress`` is called after each
    batch with the number of input lines it consumed.
    """
    from node.errors import NotFound
    from node.evidence import PUSH_ACCEPTED, PUSH_REJECTED

    if batch_size < 1:
        raise InputError("batch size must be at least 1")
    try:
        store.get_dataset(ds.id)
    except NotFound:
        register_dataset(store, ds)
    result = LoadResult()
    batch: list[SourceLine] = []

    def flush() -> None:
        decoded = [item for item in batch if item.error is None]
        reports = iter(validator.validate_many([item.record for item in decoded], ds.record_type))
        accepted: list[tuple[int, dict[str, Any]]] = []
        rejects: list[Reject] = []
        for item in batch:
            report = next(reports) if item.error is None else None
            if report is not None and report.valid:
                accepted.append((item.line, item.record))
            else:
                rejects.append(_reject(item, report))
        entries: list[tuple[str, str, dict[str, Any]]] = []
        with store.transaction():
            stored = store.upsert_many(ds.id, [(rec["id"], rec) for _, rec in accepted])
            changed = sum(1 for r in stored if r.changed)
            if accepted:
                entries.append((PUSH_ACCEPTED, actor, {
                    "dataset": ds.id, "source": source, "count": len(accepted), "changed": changed,
                    "lines": [accepted[0][0], accepted[-1][0]]}))
            if rejects:
                entries.append((PUSH_REJECTED, actor, {
                    "dataset": ds.id, "source": source, "count": len(rejects),
                    "rejects": [{"line": r.line, "id": r.id, "reason": r.reason} for r in rejects]}))
            evidence.append_many(entries)
        result.read += len(batch)
        result.accepted += len(accepted)
        result.changed += changed
        result.batches += 1
        result.rejected.extend(rejects)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for item in lines:
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    log.info("loaded %s into %s: %d read, %d stored, %d rejected", source, ds.id, result.read, result.accepted,
             len(result.rejected))
    return result
