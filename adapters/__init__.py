"""Adapters: bring county, city and provincial data onto the standard.

A declarative mapping (TOML or YAML) names a reader and its options, the target
record type, field mappings, value crosswalks and normalisers, and how the record
id is derived. :func:`run_mapping` turns every input row into a standard record
or a reject with its reasons; :func:`suggest_mapping` proposes a mapping from a
source's header and sample values.
"""

from __future__ import annotations

from adapters.crosswalk import Crosswalk, crosswalk_to_skos, load_skos_crosswalk
from adapters.engine import MapReport, Reject, division_source, load_validator, run_mapping
from adapters.mapping import (
    CompiledMapping,
    FieldError,
    Mapping,
    compile_mapping,
    load_mapping,
    parse_mapping,
)
from adapters.readers import ReaderOptions, open_source
from adapters.suggest import Suggestion, load_vocabulary, render_toml, suggest_mapping

__all__ = [
    "CompiledMapping",
    "Crosswalk",
    "FieldError",
    "MapReport",
    "Mapping",
    "ReaderOptions",
    "Reject",
    "Suggestion",
    "compile_mapping",
    "crosswalk_to_skos",
    "division_source",
    "load_mapping",
    "load_skos_crosswalk",
    "load_validator",
    "load_vocabulary",
    "open_source",
    "parse_mapping",
    "render_toml",
    "run_mapping",
    "suggest_mapping",
]
