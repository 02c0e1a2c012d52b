"""Write a :class:`Suggestion` as a commented TOML mapping file, ready to edit and run."""

from __future__ import annotations

import json
from typing import Any

from adapters.suggest._suggest import ColumnSuggestion, Suggestion

__all__ = ["render_toml"]


def _s(value: str) -> str:
    """A TOML basic string (JSON string syntax is a subset TOML accepts)."""
    return json.dumps(value, ensure_ascii=False)


def _v(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _s(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_v(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_v(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render {value!r}")  # pragma: no cover


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _s(key)


def _comment(text: str) -> str:
    return "\n".join("# " + line if line else "#" for line in text.splitlines())


def _field(lines: list[str], c: ColumnSuggestion, crosswalk_names: dict[str, str]) -> None:
    lines.append("")
    lines.append(_comment(f"{c.column} -> {c.property}: confidence {c.confidence:.2f} ({c.why})"))
    for note in c.notes:
        lines.append(_comment(note))
    lines.append(f"[fields.{c.property}]")
    lines.append(f"column = {_s(c.column)}")
    if c.normalise:
        lines.append(f"normalise = {_v(c.normalise)}")
    if c.crosswalk is not None:
        lines.append(f"crosswalk = {_s(crosswalk_names[c.column])}")
    if c.fallback is not None:
        lines.append(f"fallback = {_v(c.fallback)}")


def render_toml(s: Suggestion) -> str:
    lines: list[str] = [
        _comment(f"Mapping suggested by `shulian map suggest` for {s.input} -> {s.record_type}"),
        _comment(f"from the header and {s.rows_sampled} sample row(s). Review every field, then run:"),
        _comment(f"  shulian map --mapping THIS.toml {s.input} -o OUT.jsonl --rejects REJECTS.csv"),
        "",
        "version = 1",
        f"description = {_s(f'{s.input} -> {s.record_type} (suggested)')}",
        "",
        "[source]",
    ]
    src = s.source
    lines.append(f"reader = {_s(src.get('format', 'csv'))}")
    if src.get("format") in ("csv", "jsonl") and src.get("encoding"):
        lines.append(f"encoding = {_s(src['encoding'])}")
    if src.get("format") == "csv" and src.get("delimiter"):
        lines.append(f"delimiter = {_s(src['delimiter'])}")
    if src.get("format") == "xlsx" and src.get("sheet"):
        lines.append(f"sheet = {_s(src['sheet'])}")
    lines += ["", "[target]", f"type = {_s(s.record_type)}", "", _comment(s.id_note), "[id]"]
    for k, v in s.id.items():
        lines.append(f"{k} = {_v(v)}")

    crosswalk_names: dict[str, str] = {}
    for c in s.columns:
        if c.crosswalk is not None:
            name = c.crosswalk.scheme
            n = 2
            while name in crosswalk_names.values():
                name, n = f"{c.crosswalk.scheme}-{n}", n + 1
            crosswalk_names[c.column] = name
    for c in s.columns:
        if c.property is not None:
            _field(lines, c, crosswalk_names)
    for d in s.derived:
        lines.append("")
        lines.append(_comment(f"{d.property}: {d.why} (column {d.column})"))
        lines.append(f"[fields.{d.property}]")
        lines.append(f"column = {_s(d.column)}")
        lines.append(f"normalise = {_v(d.normalise)}")

    for c in s.columns:
        if c.crosswalk is None:
            continue
        cw = c.crosswalk
        lines += ["", _comment(f"{c.column}: local values -> code list {cw.scheme}"),
                  f"[crosswalks.{_key(crosswalk_names[c.column])}]", f"target = {_s(cw.scheme)}"]  # fmt: skip
        if any(not k.isascii() or k.isalpha() for k in cw.table) and any(k.isascii() for k in cw.table):
            lines.append("ignore_case = true")
        lines.append(f"[crosswalks.{_key(crosswalk_names[c.column])}.map]")
        for local, code in cw.table.items():
            lines.append(f"{_s(local)} = {_s(code)}")
        for local in cw.unmatched:
            lines.append(f"# {_s(local)} = \"\"  # not in code list {cw.scheme}: fill in its code, or leave it to be rejected")

    unplaced = [c for c in s.columns if c.property is None]
    if unplaced or s.unplaced_properties:
        lines += ["", _comment("-" * 76)]
    for c in unplaced:
        sample = ", ".join(c.samples[:3])
        lines.append(_comment(f"column {c.column!r}: {'; '.join(c.notes)}" + (f" (sample: {sample})" if sample else "")))
    for p in s.unplaced_properties:
        lines.append(_comment(f"property {p.name} ({p.label('zh')}): no column found; map one if the source has it"))
    return "\n".join(lines) + "\n"
