"""Normalisers by name: what a mapping file's ``normalise = [...]`` lists.

Each entry builds, once, a plain ``str -> str`` callable with its options bound,
so the mapping engine calls one closure per value and never looks anything up
per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.normalise._amount import AMOUNT_UNITS, normalise_amount
from adapters.normalise._dates import normalise_date
from adapters.normalise._divisions import DivisionIndex
from adapters.normalise._errors import NormaliseError
from adapters.normalise._identity import (
    identity_birth_date,
    identity_sex,
    normalise_credit_code,
    normalise_identity_number,
)
from adapters.normalise._text import collapse_spaces, halfwidth, trim

__all__ = ["Normaliser", "NormaliserSpec", "NORMALISERS", "build_normaliser", "DivisionSource"]

Normaliser = Callable[[str], str]
DivisionSource = Callable[[], DivisionIndex]


@dataclass(frozen=True)
class NormaliserSpec:
    """One documented normaliser: its options (name -> default) and whether results are worth caching."""

    summary: str
    options: Mapping[str, Any]
    cacheable: bool


NORMALISERS: dict[str, NormaliserSpec] = {
    "trim": NormaliserSpec("strip surrounding whitespace (incl. full-width space)", {}, False),
    "halfwidth": NormaliserSpec("full-width letters, digits and punctuation to half-width", {}, False),
    "collapse_spaces": NormaliserSpec("trim and collapse inner whitespace runs to one space", {}, False),
    "upper": NormaliserSpec("upper case", {}, False),
    "lower": NormaliserSpec("lower case", {}, False),
    "date": NormaliserSpec("dates (ISO, YYYYMMDD, 2020年1月2日, 2020/1/2, 2020.01.02) to YYYY-MM-DD", {}, True),
    "identity_number": NormaliserSpec("identity numbers: half-width, upper-case X, 15 -> 18 digits", {}, False),
    "identity_birth_date": NormaliserSpec("the birth date inside an 18-character identity number", {}, False),
    "identity_sex": NormaliserSpec("the sex code (1/2) from an 18-character identity number", {}, False),
    "credit_code": NormaliserSpec("unified social credit codes: half-width, upper case", {}, False),
    "division": NormaliserSpec(
        "division names, addresses or codes to six-digit codes through the division list",
        {"level": "any"},
        True,
    ),
    "amount": NormaliserSpec(
        "amounts in 元 or 万元 to 元 as a decimal string",
        {"unit": "元", "places": 2, "rounding": "exact"},
        True,
    ),
    "regex": NormaliserSpec(
        "regular-expression substitution (pattern, replace) or extraction (pattern, group)",
        {"pattern": None, "replace": None, "group": None},
        False,
    ),
}


class OptionError(ValueError):
    """A normaliser option is wrong; ``key`` names it (relative to the normaliser entry)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _regex(pattern: Any, replace: Any, group: Any) -> Normaliser:
    if not isinstance(pattern, str) or not pattern:
        raise OptionError("pattern", "regex needs a non-empty string `pattern`")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise OptionError("pattern", f"bad regular expression {pattern!r}: {exc}") from exc
    if replace is not None and group is not None:
        raise OptionError("replace", "give `replace` or `group`, not both")
    if replace is not None:
        if not isinstance(replace, str):
            raise OptionError("replace", "`replace` must be a string")
        sub = compiled.sub
        return lambda value: sub(replace, value)
    grp: int | str = 0 if group is None else group
    if not isinstance(grp, int | str) or isinstance(grp, bool):
        raise OptionError("group", "`group` must be a group number or name")
    search = compiled.search

    def extract(value: str) -> str:
        match = search(value)
        if match is None:
            raise NormaliseError(
                "pattern", f"{value!r} does not match /{pattern}/", f"“{value}”不符合格式 /{pattern}/"
            )
        found = match[grp]
        return "" if found is None else str(found)

    return extract


def build_normaliser(name: str, options: Mapping[str, Any], divisions: DivisionSource) -> Normaliser:
    """The callable for one ``normalise`` entry; raise :class:`OptionError` on bad options."""
    spec = NORMALISERS[name]
    opts = {**spec.options, **options}
    if name == "trim":
        return trim
    if name == "halfwidth":
        return halfwidth
    if name == "collapse_spaces":
        return collapse_spaces
    if name == "upper":
        return str.upper
    if name == "lower":
        return str.lower
    if name == "date":
        return normalise_date
    if name == "identity_number":
        return normalise_identity_number
    if name == "identity_birth_date":
        return identity_birth_date
    if name == "identity_sex":
        return identity_sex
    if name == "credit_code":
        return normalise_credit_code
    if name == "division":
        level = opts["level"]
        if level not in ("any", "county"):
            raise OptionError("level", f"level must be 'any' or 'county', not {level!r}")
        return divisions().resolver(level)
    if name == "amount":
        unit, places, rounding = opts["unit"], opts["places"], opts["rounding"]
        if unit not in AMOUNT_UNITS:
            raise OptionError("unit", f"unit must be one of {', '.join(AMOUNT_UNITS)}, not {unit!r}")
        if not isinstance(places, int) or isinstance(places, bool) or not 0 <= places <= 8:
            raise OptionError("places", f"places must be an integer 0..8, not {places!r}")
        if rounding not in ("exact", "half_up", "half_even"):
            raise OptionError("rounding", f"rounding must be exact, half_up or half_even, not {rounding!r}")
        return lambda value: normalise_amount(value, unit, places, rounding)
    if name == "regex":
        return _regex(opts["pattern"], opts["replace"], opts["group"])
    raise AssertionError(f"normaliser {name} registered without a builder")  # pragma: no cover
