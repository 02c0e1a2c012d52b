"""The boundary validator: a JSON record of a given type against the standard.

Two engines, one standard:

* ``shacl`` — the reference: record -> RDF through the context -> pySHACL;
* ``fast`` — the hot path, compiled once from the same shapes.

They agree on the verdict and on the set of (path, constraint) violations;
``tests/validation`` proves it on every example and on generated records.
"""

from __future__ import annotations

from node.validation._api import Validator, get_validator, record_type_of
from node.validation._decode import MAX_DEPTH, MAX_RECORD_BYTES, decode_flat, decode_json, decode_record
from node.validation._report import RecordReport, Violation

__all__ = [
    "Validator",
    "get_validator",
    "record_type_of",
    "RecordReport",
    "Violation",
    "decode_json",
    "decode_record",
    "decode_flat",
    "MAX_DEPTH",
    "MAX_RECORD_BYTES",
]
