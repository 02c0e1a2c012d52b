"""Helpers shared by the CLI commands.

Among them those the node-operation commands (``catalog``, ``datasets``, ``access``, ``status``,
``peers``) share: the ``--config`` option, loading the node's configuration, opening its store,
naming the operator, and printing times and tables.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from node.errors import EXIT_USAGE, InputError, ShulianError

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.store import Store

__all__ = [
    "config_option",
    "echo_json",
    "fail_cleanly",
    "local_time",
    "node_config",
    "open_store",
    "operator_name",
    "print_table",
    "standard_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def fail_cleanly(fn: F) -> F:
    """Turn a ShulianError into a one-line message and its exit code (never a traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ShulianError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code or EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


standard_option = click.option(
    "--standard",
    "standard_dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Use the standard in this directory instead of the shipped one (e.g. one with the full division list).",
)


def config_option(fn: F) -> F:
    return click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="The node's node.toml (default: $SHULIAN_CONFIG).")(fn)


def node_config(config_path: Path | None) -> NodeConfig:
    """The node's configuration (files it names need not exist for these commands)."""
    from node.config import config_path_from_env, load_config

    path = config_path or config_path_from_env()
    if path is None:
        raise InputError("give --config node.toml, or set SHULIAN_CONFIG")
    return load_config(path, check_files=False)


def open_store(cfg: NodeConfig, *, create: bool) -> Store | None:
    """The node's store; None when it does not exist yet and ``create`` is False.

    Safe while the daemon runs: SQLite in WAL mode, writers wait for the lock (busy timeout).
    """
    from node.store import Store

    if not create and not cfg.store.exists():
        return None
    return Store(cfg.store, durability=cfg.durability)


def operator_name(given: str | None = None) -> str:
    """``operator:<name>``: who runs this command (the evidence log's actor for operator actions)."""
    if given:
        return given if given.startswith("operator:") else f"operator:{given}"
    try:
        import pwd

        name = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        name = "unknown"
    return f"operator:{name}"


def local_time(value: str | dt.datetime | None) -> str:
    """A time as China Standard Time for tables: ``2025-10-15 14:03``; "—" for None."""
    from node.catalog import CHINA_TZ

    if value is None:
        return "—"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped: keep cells whole instead of wrapping at 80 columns
        console = Console(width=max(console.width, 200))
    console.print(table)
