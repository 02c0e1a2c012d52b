"""Column-at-a-time evaluation of one field over a block of rows.

The per-row closures of :mod:`adapters.mapping._compile` define what a field
means. A batch function computes the same values for a whole block at once,
moving the common work into C-level ``map`` calls (the cell getter, ``str.strip``,
the null check, the memo or crosswalk lookup), and hands back the positions of
the rows it cannot settle on its own (a value that fails to normalise, a missing
value with a fallback, a default or ``required``). The engine maps those rows
again with the per-row closures, which raise the precise :class:`FieldError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from adapters.mapping._errors import FieldError
from adapters.normalise import NormaliseError
from adapters.normalise._registry import Normaliser

__all__ = ["BatchFn", "CACHE_LIMIT", "MissingFn", "cell_batch", "constant_batch", "missing_filler", "row_batch"]

CACHE_LIMIT = 1 << 16
_MEMO_TRIAL = 8192  # lookups before a memo is first judged
_MEMO_MIN_HITS = 0.1  # the share of lookups a memo must (be expected to) answer to be kept

# (block of rows, the block's columns when the rows are positional and already transposed, else None)
#   -> (one value per row, None where the property is omitted; positions to map row by row)
BatchFn = Callable[[list[Any], "Sequence[Sequence[Any]] | None"], tuple[list[Any], list[int]]]
_FAILED = object()


def constant_batch(value: str) -> BatchFn:
    def batch(block: list[Any], columns: Sequence[Sequence[Any]] | None = None) -> tuple[list[Any], list[int]]:
        return [value] * len(block), []

    return batch


def row_batch(row_fn: Callable[[Any], str | None]) -> BatchFn:
    """Any field shape (keyed rows, split, concatenation): the per-row closure, row by row."""

    def batch(block: list[Any], columns: Sequence[Sequence[Any]] | None = None) -> tuple[list[Any], list[int]]:
        out: list[Any] = []
        slow: list[int] = []
        append = out.append
        for i, row in enumerate(block):
            try:
                append(row_fn(row))
            except FieldError:  # the engine maps this row again for the message
                append(None)
                slow.append(i)
        return out, slow

    return batch


MissingFn = Callable[[list[Any], list[Any], list[int]], None]


def missing_filler(fallback: BatchFn | None, default: str | None, required: bool) -> MissingFn | None:
    """What a block does for rows whose value is missing (None in ``out``, not in ``slow``): the
    fallback field's batch for those rows, then the default; ``required`` leaves the row to the
    per-row closure, which raises the error. None when a missing value is simply omitted."""
    if fallback is None and default is None and not required:
        return None

    def fill(block: list[Any], out: list[Any], slow: list[int]) -> None:
        if None not in out:
            return
        failed = set(slow)
        positions = [i for i, v in enumerate(out) if v is None and i not in failed]
        if fallback is not None and positions:
            values, sub_slow = fallback([block[i] for i in positions], None)
            bad = set(sub_slow)
            remaining = []
            for j, i in enumerate(positions):
                if j in bad:
                    slow.append(i)
                elif values[j] is not None:
                    out[i] = values[j]
                else:
                    remaining.append(i)
            positions = remaining
        if default is not None:
            for i in positions:
                out[i] = default
        elif required:
            slow.extend(positions)

    return fill


def cell_batch(
    index: int,
    getter: Callable[[Any], Any],
    nulls: frozenset[str],
    chain: Normaliser | None,
    cache: dict[str, str] | None,
    fill_missing: MissingFn | None,
) -> BatchFn:
    """One column of positional rows. ``cache`` (shared with the row closure) memoises ``chain``;
    without a cache every value goes through ``chain`` once. A memo that fills up without
    answering lookups (a column of addresses, all different) is dropped."""
    strip = str.strip
    null_get = dict.fromkeys(nulls).get  # a null value -> None, anything else -> itself (as the default)

    def cells(block: list[Any], columns: Sequence[Sequence[Any]] | None) -> list[Any]:
        raw = columns[index] if columns is not None else list(map(getter, block))
        stripped: list[Any]
        try:
            stripped = list(map(strip, raw))
        except TypeError:  # empty cells as None (Excel, SQL)
            stripped = [None if v is None else str(v).strip() for v in raw]
        return list(map(null_get, stripped, stripped))

    def finish(block: list[Any], out: list[Any], slow: list[int]) -> tuple[list[Any], list[int]]:
        if fill_missing is not None:
            fill_missing(block, out, slow)
        return out, slow

    if chain is None:

        def plain(block: list[Any], columns: Sequence[Sequence[Any]] | None = None) -> tuple[list[Any], list[int]]:
            return finish(block, cells(block, columns), [])

        return plain

    normalise = chain
    steps = _steps(chain)

    def compute(values: list[Any], out: list[Any], slow: list[int], positions: list[int]) -> tuple[list[Any], dict[str, str]]:
        """``out`` with the values at ``positions`` normalised (failures go to ``slow``), and the
        new results by value (for the memo)."""
        pending = [values[i] for i in positions]
        try:
            results = _run_steps(steps, pending)  # in C where it can; an error (rare) goes value by value
        except NormaliseError:
            results = []
            for value in pending:
                try:
                    results.append(normalise(value))
                except NormaliseError:
                    results.append(_FAILED)
        if _FAILED not in results and "" not in results:
            computed = dict(zip(pending, results, strict=True))
            return list(map(computed.get, values, out)), computed  # the new result where there is one
        computed = {v: r for v, r in zip(pending, results, strict=True) if r.__class__ is str and r}
        for i, result in zip(positions, results, strict=True):
            if result is _FAILED:
                slow.append(i)
            out[i] = result if result.__class__ is str and result else None
        return out, computed

    def direct(block: list[Any], columns: Sequence[Sequence[Any]] | None = None) -> tuple[list[Any], list[int]]:
        values = cells(block, columns)
        slow: list[int] = []
        if None not in values:
            # the chain's own functions mapped in C, no wrapper a value (an error in the block,
            # rare, sends it through compute(), value by value)
            active = _active_steps(steps, values)
            try:
                out = _run_steps(active, values)
            except NormaliseError:
                pass
            else:
                if "" in out:
                    for i, v in enumerate(out):
                        if v == "":
                            out[i] = None
                return finish(block, out, slow)
        out, _ = compute(values, [None] * len(values), slow, [i for i, v in enumerate(values) if v is not None])
        return finish(block, out, slow)

    if cache is None:
        return direct
    memo = cache
    lookup = cache.get
    stats = [0, 0]  # looked up, found
    use_memo = [True]

    def cached(block: list[Any], columns: Sequence[Sequence[Any]] | None = None) -> tuple[list[Any], list[int]]:
        if not use_memo[0]:
            return direct(block, columns)
        values = cells(block, columns)
        slow: list[int] = []
        out = list(map(lookup, values))
        if None in out:
            misses = [i for i, found in enumerate(out) if found is None and values[i] is not None]
            stats[0] += len(values)
            stats[1] += len(values) - len(misses)
            if misses:
                out, computed = compute(values, out, slow, misses)
                if len(memo) < CACHE_LIMIT:
                    memo.update(computed)
            if not _worth_keeping(stats[0], stats[1], len(memo)):
                use_memo[0] = False  # it finds (or will find) almost nothing: it only costs
                memo.clear()
        return finish(block, out, slow)

    return cached


def _worth_keeping(looked_up: int, found: int, size: int) -> bool:
    """Whether a memo pays. Early on (after ``_MEMO_TRIAL`` lookups) from the expected hit rate:
    with D distinct values drawn at random, n lookups find about n²/2D, so D ≈ n²/2·found, and a
    full memo answers about CACHE_LIMIT/D of the lookups. Once full, from its actual hit rate."""
    if looked_up < _MEMO_TRIAL:
        return True
    if size >= CACHE_LIMIT:
        return found >= looked_up * _MEMO_MIN_HITS
    if found == 0:
        return False
    distinct = looked_up * looked_up / (2 * found)
    return CACHE_LIMIT / distinct >= _MEMO_MIN_HITS


def _run_steps(steps: Sequence[Normaliser], values: list[str]) -> list[Any]:
    """Apply the steps to every value, C-level maps; a single step with a ``block`` form
    settles most values at once and is called value by value only for the rest."""
    if len(steps) == 1:
        block = getattr(steps[0], "block", None)
        if block is not None:
            out: list[Any] = block(values)
            if None in out:
                step = steps[0]
                for i, v in enumerate(out):
                    if v is None:
                        out[i] = step(values[i])
            return out
    mapped: Any = values
    for step in steps:
        mapped = map(step, mapped)
    return list(mapped)


def _active_steps(steps: tuple[Normaliser, ...], values: list[str]) -> list[Normaliser]:
    """Leading steps that cannot change any value of this block (``unchanged_unless`` finds
    nothing in the block's text: no full-width character for ``halfwidth`` ...) are skipped."""
    joined: str | None = None
    for k, step in enumerate(steps):
        check = getattr(step, "unchanged_unless", None)
        if check is None:
            return list(steps[k:])
        if joined is None:
            joined = "\x00".join(values)
        if check.search(joined) is not None:
            return list(steps[k:])
    return []


def _steps(chain: Normaliser) -> tuple[Normaliser, ...]:
    """The functions a compiled chain applies, in order (see ``_Compiler.chain``)."""
    found = getattr(chain, "steps", None)
    return tuple(found) if found else (chain,)
