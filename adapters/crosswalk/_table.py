"""Value crosswalks: a local code or label -> the standard's code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from adapters.normalise import NormaliseError, halfwidth

__all__ = ["Crosswalk"]

_MAX_SHOWN = 12


@dataclass(frozen=True)
class Crosswalk:
    """``table`` maps local values to standard codes (notations of the code list ``target``).

    A value not in the table takes ``default`` if one is set, else it is a reject.
    ``ignore_case`` also folds full-width letters, so ``Ｍ``/``m``/``M`` are one key.
    """

    name: str
    table: Mapping[str, str]
    target: str | None = None
    ignore_case: bool = False
    default: str | None = None
    source: str | None = None  # where the table came from (mapping key or SKOS file)
    _folded: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded = {self._fold(k): v for k, v in self.table.items()} if self.ignore_case else dict(self.table)
        object.__setattr__(self, "_folded", folded)

    @staticmethod
    def _fold(value: str) -> str:
        return halfwidth(value).strip().casefold()

    def compile(self) -> Callable[[str], str]:
        """One closure doing the lookup; the crosswalk is compiled once per mapping."""
        exact = dict(self.table).get
        folded = self._folded.get
        default = self.default
        fold = self._fold if self.ignore_case else None
        known = ", ".join(sorted(self.table)[:_MAX_SHOWN]) + (" ..." if len(self.table) > _MAX_SHOWN else "")
        name = self.name

        def lookup(value: str) -> str:
            found = exact(value)
            if found is not None:
                return found
            if fold is not None:
                found = folded(fold(value))
                if found is not None:
                    return found
            if default is not None:
                return default
            raise NormaliseError(
                "crosswalk",
                f"value {value!r} is not in crosswalk '{name}' (known: {known})",
                f"值“{value}”不在代码对照表“{name}”中（已知：{known}）",
            )

        return lookup

    def lookup(self, value: str) -> str:
        return self.compile()(value)
