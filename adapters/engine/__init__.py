"""The mapping run: read, map, validate with the standard's fast engine, write records and rejects."""

from __future__ import annotations

from adapters.engine._report import REJECT_COLUMNS, MapReport, Reject
from adapters.engine._run import ID_PATTERN, auto_workers, division_source, run_mapping
from adapters.engine._validator import Report, Validator, Violation, load_validator, validate_batch

__all__ = [
    "ID_PATTERN",
    "REJECT_COLUMNS",
    "MapReport",
    "Reject",
    "Report",
    "Validator",
    "Violation",
    "auto_workers",
    "division_source",
    "load_validator",
    "run_mapping",
    "validate_batch",
]
