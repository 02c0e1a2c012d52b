"""Where the standard's files live.

The ``ontology`` and ``schemas`` folders are Python packages shipped with their data
(Turtle, JSON) as package data, so an installed node finds them through
:mod:`importlib.resources`. When the packages cannot be imported (running from a
source tree that is not installed) the repository layout is used instead.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
from pathlib import Path

from node.errors import StandardError

__all__ = ["ontology_dir", "schemas_dir", "resolve_standard_dir"]

log = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _package_dir(package: str) -> Path:
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        root = None
    if root is not None:
        # A package installed from a wheel or in editable mode is a real directory.
        candidate = Path(str(root))
        if candidate.is_dir():
            return candidate
    fallback = _REPO_ROOT / package
    if fallback.is_dir():
        log.debug("package %s not importable as a directory; using %s", package, fallback)
        return fallback
    raise StandardError(
        f"cannot find the standard's '{package}' folder (not an installed package and not at "
        f"{fallback}); reinstall shulian or run from the source tree"
    )


def ontology_dir() -> Path:
    """The folder holding the standard: ``vocab/``, ``shapes/``, ``codelists/``, ``examples/``."""
    return _package_dir("ontology")


def schemas_dir() -> Path:
    """The folder holding artifacts derived from the standard (JSON Schemas, contexts, .proto)."""
    return _package_dir("schemas")


def resolve_standard_dir(standard_dir: str | os.PathLike[str] | None) -> Path:
    """``standard_dir`` as a Path, or the shipped ontology folder when it is None."""
    if standard_dir is None:
        return ontology_dir()
    return Path(standard_dir)
