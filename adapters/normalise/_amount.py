"""Amounts in 元 or 万元 to 元, as decimal strings (Decimal throughout, never float)."""

from __future__ import annotations

import decimal
from decimal import Decimal

from adapters.normalise._errors import NormaliseError
from adapters.normalise._text import halfwidth

__all__ = ["AMOUNT_UNITS", "normalise_amount"]

AMOUNT_UNITS: dict[str, Decimal] = {"元": Decimal(1), "万元": Decimal(10000)}
_SUFFIXES = (("万元", "万元"), ("万", "万元"), ("元", "元"), ("圆", "元"))
_STRIP = str.maketrans("", "", ",，  ¥￥_'")
_CTX = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_UP, traps=[decimal.InvalidOperation])
_ROUNDINGS = {"half_up": decimal.ROUND_HALF_UP, "half_even": decimal.ROUND_HALF_EVEN}


def normalise_amount(value: str, unit: str = "元", places: int = 2, rounding: str = "exact") -> str:
    """``"0.8"`` in 万元 -> ``"8000.00"``. A unit written in the value (``8000元``, ``0.8万``) wins.

    ``rounding="exact"`` rejects a value that has more precision than ``places``
    decimals of 元 (money is not rounded silently); ``half_up``/``half_even`` round.
    """
    text = halfwidth(value).strip().translate(_STRIP)
    factor = AMOUNT_UNITS[unit]
    for suffix, written_unit in _SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)].rstrip()
            factor = AMOUNT_UNITS[written_unit]
            break
    try:
        number = Decimal(text)
    except decimal.InvalidOperation as exc:
        raise NormaliseError(
            "amount", f"not a decimal amount: {value!r}", f"不是有效的金额数值：{value}"
        ) from exc
    if not number.is_finite():
        raise NormaliseError("amount", f"not a finite amount: {value!r}", f"金额不是有限数值：{value}")
    yuan = _CTX.multiply(number, factor)
    quantum = Decimal(1).scaleb(-places)
    if rounding == "exact":
        rounded = yuan.quantize(quantum, context=_CTX)
        if rounded != yuan:
            shown = format(yuan.normalize(), "f")
            raise NormaliseError(
                "amount",
                f"{value!r} is {shown} 元, more precise than {places} decimal places (set rounding to round it)",
                f"{value} 折合 {shown} 元，超出 {places} 位小数精度",
            )
    else:
        rounded = yuan.quantize(quantum, rounding=_ROUNDINGS[rounding], context=_CTX)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0.00"
    return f"{rounded:f}"
