"""Declarative mappings: a source's columns, codes and formats onto a standard record type."""

from __future__ import annotations

from adapters.mapping._compile import CompiledMapping, FieldError, compile_mapping
from adapters.mapping._load import load_mapping, parse_mapping
from adapters.mapping._model import RECORD_TYPES, FieldSpec, IdSpec, Mapping, NormaliserRef

__all__ = [
    "RECORD_TYPES",
    "CompiledMapping",
    "FieldError",
    "FieldSpec",
    "IdSpec",
    "Mapping",
    "NormaliserRef",
    "compile_mapping",
    "load_mapping",
    "parse_mapping",
]
