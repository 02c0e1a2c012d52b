"""``shulian audit``: verify, show and export the evidence log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from node.cli.init import cli_errors
from node.errors import EXIT_FINDINGS, InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from node.evidence import EvidenceLog
    from node.store import Store

__all__ = ["audit"]


def _source(config: Path | None, store: Path | None) -> tuple[Store, list[ed25519.Ed25519PublicKey]]:
    from node.config import config_path_from_env, load_config
    from node.pki import load_signing_key
    from node.store import Store

    if store is not None:
        if not store.exists():
            raise InputError(f"{store}: no store there")
        return Store(store), []
    config = config or config_path_from_env()
    if config is None:
        raise InputError("give --config node.toml (or --store PATH), or set SHULIAN_CONFIG")
    cfg = load_config(config, check_files=False)
    if not cfg.store.exists():
        raise InputError(f"{cfg.store}: the node's store does not exist yet (nothing to audit)")
    keys = [load_signing_key(cfg.signing_key).public_key()] if cfg.signing_key.exists() else []
    return Store(cfg.store, durability=cfg.durability), keys


def _log(store: Store) -> EvidenceLog:
    from node.evidence import EvidenceLog

    return EvidenceLog(store)


def _anchor(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, sep, digest = value.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        raise InputError(f"--anchor {value!r}: use SEQ:HASH (64 hex digits), as 'shulian audit tail' prints it")
    return int(seq), digest.lower()


_config_opt = click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                           help="The node's node.toml (default: $SHULIAN_CONFIG).")
_store_opt = click.option("--store", type=click.Path(dir_okay=False, path_type=Path), default=None,
                          help="A store file, instead of --config.")


@click.group("audit")
def audit() -> None:
    """Check and read the evidence log (hash-chained, signed by the node).

    \b
    Example:
      shulian audit verify --config node.toml
      shulian audit tail --config node.toml -n 20
      shulian audit export --config node.toml --out evidence.jsonl
      shulian audit verify --file evidence.jsonl --public-key keys/signing.pem

    Exit codes: 0 the chain verifies, 1 it does not (each problem is named by
    seq), 2 bad input.
    """


@audit.command("verify")
@_config_opt
@_store_opt
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Verify an exported JSON Lines file instead of a store.")
@click.option("--public-key", "public_keys", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ed25519 public key file (PEM, or a PEM private key, or base64); repeatable.")
@click.option("--anchor", default=None, help="SEQ:HASH recorded earlier; detects entries cut from the end.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@cli_errors
def audit_verify(config: Path | None, store: Path | None, file: Path | None, public_keys: tuple[Path, ...],
                 anchor: str | None, as_json: bool) -> None:
    """Verify every entry's hash, signature, order and link; name each problem by seq.

    \b
    Example:
      shulian audit verify --config node.toml
      shulian audit verify --store data/store.db --public-key keys/signing.pem --anchor 120:3f5a...
    """
    from node.evidence import verify_file
    from node.pki import load_signing_public_key

    keys = [load_signing_public_key(p) for p in public_keys]
    if file is not None:
        if not keys:
            raise InputError("verifying a file needs --public-key")
        report = verify_file(file, keys, anchor=_anchor(anchor))
    else:
        st, own = _source(config, store)
        try:
            keys = keys or own
            if not keys:
                raise InputError("no public key: give --public-key (or --config with the node's signing key)")
            report = _log(st).verify(keys, anchor=_anchor(anchor))
        finally:
            st.close()
    if as_json:
        click.echo(json.dumps({
            "ok": report.ok, "entries": report.entries, "head_seq": report.head_seq,
            "head_hash": report.head_hash,
            "findings": [{"seq": f.seq, "problem": f.problem, "message": f.message} for f in report.findings],
        }, ensure_ascii=False, indent=2))
    elif report.ok:
        click.echo(f"ok: {report.entries} entries verified; head seq {report.head_seq} hash {report.head_hash}")
    else:
        for finding in report.findings:
            click.echo(str(finding))
        click.echo(f"FAILED: {len(report.findings)} problem(s) in {report.entries} entries")
    if not report.ok:
        raise SystemExit(EXIT_FINDINGS)


@audit.command("tail")
@_config_opt
@_store_opt
@click.option("-n", "count", default=20, show_default=True, type=click.IntRange(min=1), help="How many entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of entries).")
@cli_errors
def audit_tail(config: Path | None, store: Path | None, count: int, as_json: bool) -> None:
    """Show the latest entries (oldest first).

    \b
    Example:
      shulian audit tail --config node.toml -n 50 --json
    """
    st, _ = _source(config, store)
    try:
        entries = _log(st).tail(count)
    finally:
        st.close()
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"evidence: last {len(entries)} (full entries: --json)")
    table.add_column("seq", no_wrap=True, justify="right")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("actor", no_wrap=True)
    table.add_column("details", no_wrap=True, overflow="ellipsis", max_width=max(8, console.width - 82))
    for e in entries:
        details = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
                            for k, v in sorted(e.details.items()))
        table.add_row(str(e.seq), e.time[:19].replace("T", " "), e.kind, e.actor, details)
    console.print(table)
    if entries:
        click.echo(f"anchor: {entries[-1].seq}:{entries[-1].hash}")


@audit.command("export")
@_config_opt
@_store_opt
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output .jsonl file.")
@cli_errors
def audit_export(config: Path | None, store: Path | None, out: Path) -> None:
    """Export every entry as JSON Lines (for offline verification with 'audit verify --file').

    \b
    Example:
      shulian audit export --config node.toml --out evidence.jsonl
    """
    st, _ = _source(config, store)
    try:
        n = _log(st).export(out)
    finally:
        st.close()
    click.echo(f"exported {n} entries to {out}")
