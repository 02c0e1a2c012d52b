"""The responsibility list (共享责任清单) and the one decision every transport uses.

- model: :class:`ResponsibilityList`, :class:`DatasetPolicy`, :class:`Grant`, :class:`SharingType`,
  :class:`MaskRule`;
- decision: :func:`decide` -> :class:`Decision` (``Decision.apply(record)`` projects and masks);
- RDF (the standard's terms + ODRL 2.2): :func:`to_graph`, :func:`from_graph`, :func:`load_list`,
  :func:`dump_list`, :func:`to_turtle`; SHACL: :func:`validate_graph`, :func:`load_validated`;
- ODRL JSON-LD export: :func:`to_odrl`, :func:`to_odrl_json`;
- spreadsheet import: :func:`import_csv`;
- access requests: :mod:`node.policy.access`.
"""

from __future__ import annotations

from ._csv import CsvImportError, CsvProblem, ImportResult, import_csv, parse_until
from ._odrl import ODRL_CONTEXT, to_odrl, to_odrl_json
from ._rdf import dump_list, from_graph, from_turtle, load_list, read_graph, to_graph, to_turtle
from .decision import Decision, Projector, ReasonCode, decide
from .masking import REDACTED, MaskMethod, MaskRule, parse_mask_assignments
from .model import DatasetPolicy, Grant, ResponsibilityList, SharingType
from .shacl import PolicyReport, ShapeViolation, load_validated, validate_graph, validate_list

__all__ = [
    "ResponsibilityList",
    "DatasetPolicy",
    "Grant",
    "SharingType",
    "MaskRule",
    "MaskMethod",
    "REDACTED",
    "parse_mask_assignments",
    "decide",
    "Decision",
    "ReasonCode",
    "Projector",
    "to_graph",
    "from_graph",
    "to_turtle",
    "from_turtle",
    "load_list",
    "read_graph",
    "dump_list",
    "validate_graph",
    "validate_list",
    "load_validated",
    "PolicyReport",
    "ShapeViolation",
    "to_odrl",
    "to_odrl_json",
    "ODRL_CONTEXT",
    "import_csv",
    "ImportResult",
    "CsvImportError",
    "CsvProblem",
    "parse_until",
]
