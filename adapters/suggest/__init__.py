"""``shulian map suggest``: propose a mapping file from a source's header and sample values."""

from __future__ import annotations

from adapters.suggest._profile import ColumnProfile, profile_column
from adapters.suggest._render import render_toml
from adapters.suggest._suggest import THRESHOLD, ColumnSuggestion, Suggestion, suggest_mapping
from adapters.suggest._vocab import CodeList, PropertyInfo, Vocabulary, load_vocabulary

__all__ = [
    "THRESHOLD",
    "CodeList",
    "ColumnProfile",
    "ColumnSuggestion",
    "PropertyInfo",
    "Suggestion",
    "Vocabulary",
    "load_vocabulary",
    "profile_column",
    "render_toml",
    "suggest_mapping",
]
