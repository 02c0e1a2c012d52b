"""Normalisers: bring local spellings of dates, numbers, codes and names onto the standard's forms."""

from __future__ import annotations

from adapters.normalise._amount import normalise_amount
from adapters.normalise._dates import normalise_date, parse_date
from adapters.normalise._divisions import (
    DivisionEntry,
    DivisionIndex,
    DivisionLike,
    load_division_csvs,
    load_standard_divisions,
)
from adapters.normalise._errors import NormaliseError
from adapters.normalise._identity import (
    credit_check_char,
    downgrade_identity_number,
    identity_birth_date,
    identity_check_char,
    identity_sex,
    is_valid_credit_code,
    is_valid_identity_number,
    normalise_credit_code,
    normalise_identity_number,
    upgrade_identity_number,
)
from adapters.normalise._registry import (
    NORMALISERS,
    Normaliser,
    NormaliserSpec,
    OptionError,
    build_normaliser,
)
from adapters.normalise._text import collapse_spaces, halfwidth, trim

__all__ = [
    "NORMALISERS",
    "DivisionEntry",
    "DivisionIndex",
    "DivisionLike",
    "NormaliseError",
    "Normaliser",
    "NormaliserSpec",
    "OptionError",
    "build_normaliser",
    "collapse_spaces",
    "credit_check_char",
    "downgrade_identity_number",
    "halfwidth",
    "identity_birth_date",
    "identity_check_char",
    "identity_sex",
    "is_valid_credit_code",
    "is_valid_identity_number",
    "load_division_csvs",
    "load_standard_divisions",
    "normalise_amount",
    "normalise_credit_code",
    "normalise_date",
    "normalise_identity_number",
    "parse_date",
    "trim",
    "upgrade_identity_number",
]
