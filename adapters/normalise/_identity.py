"""Identity numbers (GB 11643-1999) and unified social credit codes (GB 32100-2015)."""

from __future__ import annotations

import datetime as _dt

from adapters.normalise._errors import NormaliseError
from adapters.normalise._text import halfwidth

__all__ = [
    "identity_check_char",
    "is_valid_identity_number",
    "upgrade_identity_number",
    "downgrade_identity_number",
    "normalise_identity_number",
    "identity_birth_date",
    "identity_sex",
    "credit_check_char",
    "is_valid_credit_code",
    "normalise_credit_code",
]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {ch: i for i, ch in enumerate(_CREDIT_ALPHABET)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def identity_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    if len(first17) != 17 or not _DIGITS.issuperset(first17):
        raise ValueError(f"need 17 digits, got {first17!r}")
    # the weights are 2^(18-i) mod 11 and 13 is 2 mod 11: the weighted sum is twice the digits
    # read in base 13, mod 11 (one C call; ``int`` is safe here, every character is 0-9)
    return _ID_CHECK[2 * int(first17, 13) % 11]


_MONTH_DAYS = frozenset(f"{m:02d}{d:02d}" for m in range(1, 13) for d in range(1, 32)
                         if d <= (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1])  # fmt: skip


def _birth_date_ok(yyyymmdd: str) -> bool:
    if yyyymmdd[4:] in _MONTH_DAYS and yyyymmdd[4:] != "0229" and yyyymmdd.isascii() and yyyymmdd.isdigit() and yyyymmdd[:4] != "0000":
        return True
    try:
        _dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def is_valid_identity_number(value: str) -> bool:
    """18 characters, digits then a digit or X, a real birth date and the right check character."""
    if len(value) != 18 or not _DIGITS.issuperset(value[:17]):
        return False
    if not _birth_date_ok(value[6:14]):
        return False
    return identity_check_char(value[:17]) == value[17]


def upgrade_identity_number(old: str) -> str:
    """A 15-digit number (YYMMDD birth date, no check character) to the 18-character form."""
    if len(old) != 15 or not _DIGITS.issuperset(old):
        raise NormaliseError(
            "identity-number",
            f"a 15-character identity number must be 15 digits: {old!r}",
            f"15位身份证号码必须全部为数字：{old}",
        )
    first17 = old[:6] + "19" + old[6:]
    if not _birth_date_ok(first17[6:14]):
        raise NormaliseError(
            "identity-number",
            f"15-digit identity number has no valid birth date (19{old[6:12]}): {old!r}",
            f"15位身份证号码中的出生日期无效：{old}",
        )
    return first17 + identity_check_char(first17)


def downgrade_identity_number(new: str) -> str:
    """The inverse of :func:`upgrade_identity_number` (for tests and legacy exports)."""
    if len(new) != 18 or new[6:8] != "19":
        raise ValueError(f"only 18-character numbers born 19xx have a 15-digit form: {new!r}")
    return new[:6] + new[8:17]


def normalise_identity_number(value: str) -> str:
    """Half-width, upper-case X, 15 -> 18 digits.

    An 18-character value is returned as is (its check character is the
    standard's business, so a wrong one is reported by validation with the
    standard's own message); anything that is neither 15 nor 18 characters
    long cannot be an identity number and is rejected here.
    """
    if len(value) == 18 and value.isascii() and value.isalnum() and value[17] != "x":
        return value  # the common case, as the general path below would return it
    text = value
    if not text.isascii():
        text = halfwidth(text)
    text = text.strip().replace(" ", "")
    if len(text) == 18:
        return text.upper() if text[17] == "x" else text
    if len(text) == 15:
        return upgrade_identity_number(text)
    raise NormaliseError(
        "identity-number",
        f"an identity number has 18 characters (or 15 for old numbers), this has {len(text)}: {value!r}",
        f"身份证号码应为18位（旧号码15位），此值为{len(text)}位：{value}",
    )


def _identity_block(values: list[str]) -> list[str | None]:
    """For the mapping engine's block path: values of digits (and X) are settled here, 18
    characters as they are, 15 digits upgraded; None marks the values
    :func:`normalise_identity_number` must look at (and name the error of)."""
    joined = "".join(values)
    digits = joined.replace("X", "")
    if digits and not (digits.isascii() and digits.isdigit()):
        return [None] * len(values)
    lengths = set(map(len, values))
    if lengths == {18}:
        return list(values)
    return [v if n == 18 else _upgraded(v) if n == 15 else None for v, n in zip(values, map(len, values), strict=True)]


def _upgraded(old: str) -> str | None:
    """:func:`upgrade_identity_number` of 15 ASCII characters of digits and X, or None where it
    would raise (an X, no valid birth date)."""
    if "X" in old:
        return None
    first17 = old[:6] + "19" + old[6:]
    if not _birth_date_ok(first17[6:14]):
        return None
    return first17 + _ID_CHECK[2 * int(first17, 13) % 11]


normalise_identity_number.block = _identity_block  # type: ignore[attr-defined]


def identity_birth_date(value: str) -> str:
    """The birth date inside an 18-character identity number, as YYYY-MM-DD."""
    if len(value) != 18 or not _birth_date_ok(value[6:14]) or not _DIGITS.issuperset(value[6:14]):
        raise NormaliseError(
            "identity-number",
            f"no birth date can be read from identity number {value!r}",
            f"无法从身份证号码中读取出生日期：{value}",
        )
    return f"{value[6:10]}-{value[10:12]}-{value[12:14]}"


def identity_sex(value: str) -> str:
    """GB/T 2261.1 sex code from the sequence digit of an 18-character identity number."""
    if len(value) != 18 or value[16] not in _DIGITS:
        raise NormaliseError(
            "identity-number",
            f"no sex can be read from identity number {value!r}",
            f"无法从身份证号码中读取性别：{value}",
        )
    return "1" if int(value[16]) % 2 else "2"


def credit_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters."""
    try:
        total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"need 17 characters of {_CREDIT_ALPHABET}, got {first17!r}") from exc
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(value: str) -> bool:
    if len(value) != 18 or any(c not in _CREDIT_VALUE for c in value):
        return False
    return credit_check_char(value[:17]) == value[17]


def normalise_credit_code(value: str) -> str:
    """Half-width, upper case, no inner spaces or hyphens. The check is validation's."""
    text = value
    if not text.isascii():
        text = halfwidth(text)
    text = text.strip().replace(" ", "").replace("-", "").upper()
    if len(text) != 18:
        raise NormaliseError(
            "credit-code",
            f"a unified social credit code has 18 characters, this has {len(text)}: {value!r}",
            f"统一社会信用代码应为18位，此值为{len(text)}位：{value}",
        )
    return text
