"""Helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from node.errors import EXIT_USAGE, ShulianError

__all__ = ["fail_cleanly", "echo_json", "standard_option"]

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
