"""Load and check a mapping file (TOML, or YAML): every mistake names the file and the key."""

from __future__ import annotations

import difflib
import re
import string
import tomllib
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

from adapters.crosswalk import Crosswalk, load_skos_crosswalk
from adapters.mapping._model import RECORD_TYPES, FieldSpec, IdSpec, Mapping, NormaliserRef
from adapters.normalise import NORMALISERS
from adapters.readers import FORMATS, ReaderOptions
from node.errors import ConfigError

__all__ = ["load_mapping", "parse_mapping"]

_PROPERTY = re.compile(r"[a-z][A-Za-z0-9]*")
_TOP_KEYS = {"version", "description", "source", "target", "id", "fields", "crosswalks"}
_SOURCE_KEYS = {
    "reader", "format", "encoding", "delimiter", "quotechar", "header", "columns", "sheet", "header_row",
    "connect", "query", "params", "args", "kwargs", "null_values",
}  # fmt: skip
_TARGET_KEYS = {"type", "include_type"}
_ID_KEYS = {"template", "hash", "property", "prefix", "length", "salt", "duplicates"}
_FIELD_KEYS = {
    "column", "columns", "value", "join", "split", "index", "normalise", "normalize", "crosswalk",
    "required", "default", "fallback",
}  # fmt: skip
_CROSSWALK_KEYS = {"map", "skos", "target", "match", "scheme", "ignore_case", "default"}


class _Ctx:
    def __init__(self, path: Path | None, base_dir: Path) -> None:
        self.file = str(path) if path is not None else None
        self.base_dir = base_dir

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, key=key)

    def table(self, value: Any, key: str) -> MappingABC[str, Any]:
        if not isinstance(value, MappingABC):
            raise self.error(key, f"must be a table, not {type(value).__name__}")
        return value

    def keys(self, table: MappingABC[str, Any], allowed: set[str], key: str) -> None:
        for k in table:
            if k not in allowed:
                near = difflib.get_close_matches(str(k), sorted(allowed), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f" (allowed: {', '.join(sorted(allowed))})"
                raise self.error(f"{key}.{k}" if key else str(k), f"unknown key{hint}")

    def string(self, value: Any, key: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value):
            raise self.error(key, f"must be a {'' if empty else 'non-empty '}string, not {value!r}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def integer(self, value: Any, key: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"must be an integer, not {value!r}")
        return value

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise self.error(key, f"must be a list of strings, not {value!r}")
        return tuple(self.string(v, f"{key}[{i}]") for i, v in enumerate(value))


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping file; ``.yaml``/``.yml`` are YAML, anything else TOML."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read mapping file: {exc.strerror or exc}", file=str(p)) from exc
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(raw.decode("utf-8-sig"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid YAML: {exc}", file=str(p)) from exc
    else:
        try:
            data = tomllib.loads(raw.decode("utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid TOML: {exc}", file=str(p)) from exc
    if not isinstance(data, dict):
        raise ConfigError("a mapping file must hold a table at the top level", file=str(p))
    return parse_mapping(data, path=p)


def parse_mapping(data: MappingABC[str, Any], *, path: Path | None = None, base_dir: Path | None = None) -> Mapping:
    """Check a mapping given as data (the parsed file) and build the frozen :class:`Mapping`."""
    ctx = _Ctx(path, base_dir or (path.parent if path is not None else Path.cwd()))
    ctx.keys(data, _TOP_KEYS, "")
    version = data.get("version", 1)
    if version != 1:
        raise ctx.error("version", f"this Shulian reads mapping version 1, not {version!r}")
    description = ctx.string(data.get("description", ""), "description", empty=True)
    reader, nulls = _source(ctx, ctx.table(data.get("source", {}), "source"))
    target = ctx.table(data.get("target"), "target") if "target" in data else None
    if target is None:
        raise ctx.error("target", "missing: say which record type the rows become, e.g. [target] type = \"Person\"")
    ctx.keys(target, _TARGET_KEYS, "target")
    record_type = ctx.string(target.get("type"), "target.type")
    if record_type not in RECORD_TYPES:
        raise ctx.error("target.type", f"unknown record type {record_type!r} (one of {', '.join(RECORD_TYPES)})")
    include_type = ctx.boolean(target.get("include_type", True), "target.include_type")

    crosswalks: dict[str, Crosswalk] = {}
    for name, spec in ctx.table(data.get("crosswalks", {}), "crosswalks").items():
        crosswalks[name] = _crosswalk(ctx, name, ctx.table(spec, f"crosswalks.{name}"), f"crosswalks.{name}")

    fields_table = ctx.table(data.get("fields"), "fields") if "fields" in data else None
    if not fields_table:
        raise ctx.error("fields", "missing: map at least one property, e.g. [fields.name] column = \"xm\"")
    fields: list[FieldSpec] = []
    for prop, spec in fields_table.items():
        key = f"fields.{prop}"
        if not _PROPERTY.fullmatch(prop) or prop in ("id", "type"):
            raise ctx.error(key, "a field is named by a property of the standard in lowerCamelCase (not id/type)")
        fields.append(_field(ctx, prop, ctx.table(spec, key), key, crosswalks))
    id_spec = _id(ctx, ctx.table(data.get("id"), "id") if "id" in data else None, {f.property for f in fields})
    return Mapping(
        type=record_type,
        id=id_spec,
        fields=tuple(fields),
        reader=reader,
        crosswalks=crosswalks,
        null_values=nulls,
        include_type=include_type,
        description=description,
        path=path,
    )


def _source(ctx: _Ctx, table: MappingABC[str, Any]) -> tuple[ReaderOptions, frozenset[str]]:
    ctx.keys(table, _SOURCE_KEYS, "source")
    if "reader" in table and "format" in table:
        raise ctx.error("source.format", "give source.reader or source.format, not both")
    fmt_key = "source.reader" if "reader" in table else "source.format"
    fmt = table.get("reader", table.get("format"))
    if fmt is not None and fmt not in FORMATS:
        raise ctx.error(fmt_key, f"must be one of {', '.join(FORMATS)}, not {fmt!r}")
    kw: dict[str, Any] = {"format": fmt}
    for k in ("encoding", "delimiter", "quotechar", "connect", "query"):
        if k in table:
            kw[k] = ctx.string(table[k], f"source.{k}")
    if "header" in table:
        kw["header"] = ctx.boolean(table["header"], "source.header")
    if "columns" in table:
        kw["columns"] = ctx.strings(table["columns"], "source.columns")
    if "sheet" in table:
        sheet = table["sheet"]
        if not isinstance(sheet, str | int) or isinstance(sheet, bool):
            raise ctx.error("source.sheet", "must be a sheet name or a 1-based sheet number")
        kw["sheet"] = sheet
    if "header_row" in table:
        kw["header_row"] = ctx.integer(table["header_row"], "source.header_row")
    for k in ("params", "args"):
        if k in table:
            if not isinstance(table[k], list):
                raise ctx.error(f"source.{k}", "must be a list")
            kw[k] = tuple(table[k])
    if "kwargs" in table:
        kw["kwargs"] = dict(ctx.table(table["kwargs"], "source.kwargs"))
    if fmt == "sql" and "query" not in table:
        raise ctx.error("source.query", "a sql source needs a query")
    nulls = frozenset({""})
    if "null_values" in table:
        nulls = frozenset({"", *(v.strip() for v in ctx.strings(table["null_values"], "source.null_values"))})
    return ReaderOptions(**kw), nulls


def _crosswalk(ctx: _Ctx, name: str, table: MappingABC[str, Any], key: str) -> Crosswalk:
    ctx.keys(table, _CROSSWALK_KEYS, key)
    if "map" not in table and "skos" not in table:
        raise ctx.error(key, "a crosswalk needs `map` (local = standard) or `skos` (a SKOS file)")
    target = ctx.string(table["target"], f"{key}.target") if "target" in table else None
    entries: dict[str, str] = {}
    source = key
    if "skos" in table:
        skos_path = ctx.base_dir / ctx.string(table["skos"], f"{key}.skos")
        match = ctx.strings(table.get("match", ["exactMatch", "closeMatch"]), f"{key}.match")
        scheme = ctx.string(table["scheme"], f"{key}.scheme") if "scheme" in table else None
        entries.update(load_skos_crosswalk(skos_path, target=target, match=match, scheme=scheme, key=key))
        source = str(skos_path)
    elif "match" in table or "scheme" in table:
        raise ctx.error(f"{key}.match" if "match" in table else f"{key}.scheme", "only used with `skos`")
    for local, code in ctx.table(table.get("map", {}), f"{key}.map").items():
        if not isinstance(code, str):
            raise ctx.error(f"{key}.map.{local}", f"codes are strings: write \"{code}\" (quoted)")
        entries[str(local)] = code
    default = ctx.string(table["default"], f"{key}.default") if "default" in table else None
    ignore_case = ctx.boolean(table.get("ignore_case", False), f"{key}.ignore_case")
    if ignore_case:
        folded: dict[str, str] = {}
        for local, code in entries.items():
            f = Crosswalk._fold(local)
            if folded.get(f, code) != code:
                raise ctx.error(f"{key}.map", f"with ignore_case, {local!r} collides with another key for a different code")
            folded[f] = code
    return Crosswalk(name=name, table=entries, target=target, ignore_case=ignore_case, default=default, source=source)


def _normalisers(ctx: _Ctx, value: Any, key: str) -> tuple[NormaliserRef, ...]:
    if isinstance(value, str | MappingABC):
        value = [value]
    if not isinstance(value, list):
        raise ctx.error(key, "must be a list of normaliser names or {name = ..., option = ...} tables")
    refs: list[NormaliserRef] = []
    for i, entry in enumerate(value):
        k = f"{key}[{i}]"
        if isinstance(entry, str):
            name, options = entry, {}
        elif isinstance(entry, MappingABC):
            name = ctx.string(entry.get("name"), f"{k}.name")
            options = {o: v for o, v in entry.items() if o != "name"}
        else:
            raise ctx.error(k, f"must be a normaliser name or table, not {entry!r}")
        if name not in NORMALISERS:
            near = difflib.get_close_matches(name, sorted(NORMALISERS), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ctx.error(k, f"unknown normaliser {name!r}; {hint}known: {', '.join(sorted(NORMALISERS))}")
        allowed = set(NORMALISERS[name].options)
        for o in options:
            if o not in allowed:
                raise ctx.error(f"{k}.{o}", f"normaliser {name!r} has no option {o!r} (options: {', '.join(sorted(allowed)) or 'none'})")
        refs.append(NormaliserRef(name=name, options=dict(options), key=k))
    return tuple(refs)


def _field(
    ctx: _Ctx, prop: str, table: MappingABC[str, Any], key: str, crosswalks: dict[str, Crosswalk]
) -> FieldSpec:
    ctx.keys(table, _FIELD_KEYS, key)
    given = [k for k in ("column", "columns", "value") if k in table]
    if len(given) != 1:
        raise ctx.error(key, "give exactly one of `column`, `columns` (to concatenate) or `value` (a constant)")
    kw: dict[str, Any] = {}
    if "column" in table:
        kw["columns"] = (ctx.string(table["column"], f"{key}.column"),)
    elif "columns" in table:
        kw["columns"] = ctx.strings(table["columns"], f"{key}.columns")
        if not kw["columns"]:
            raise ctx.error(f"{key}.columns", "must name at least one column")
    else:
        value = table["value"]
        if not isinstance(value, str):
            raise ctx.error(f"{key}.value", f"values are strings in the standard: write \"{value}\" (quoted)")
        kw["value"] = value
    if "join" in table:
        if "columns" not in table:
            raise ctx.error(f"{key}.join", "join is for several `columns`")
        kw["join"] = ctx.string(table["join"], f"{key}.join", empty=True)
    if "split" in table:
        if "column" not in table:
            raise ctx.error(f"{key}.split", "split works on one `column`")
        kw["split"] = ctx.string(table["split"], f"{key}.split")
        kw["index"] = ctx.integer(table.get("index", 0), f"{key}.index")
    elif "index" in table:
        raise ctx.error(f"{key}.index", "index is the part to take after `split`")
    if "normalise" in table and "normalize" in table:
        raise ctx.error(f"{key}.normalize", "give normalise or normalize, not both")
    norm_key = "normalise" if "normalise" in table else "normalize"
    if norm_key in table:
        kw["normalise"] = _normalisers(ctx, table[norm_key], f"{key}.{norm_key}")
    if "crosswalk" in table:
        cw = table["crosswalk"]
        if isinstance(cw, MappingABC):
            inline = f"{key}.crosswalk"
            crosswalks[inline] = _crosswalk(ctx, inline, cw, inline)
            kw["crosswalk"] = inline
        else:
            name = ctx.string(cw, f"{key}.crosswalk")
            if name not in crosswalks:
                known = ", ".join(sorted(k for k in crosswalks if not k.startswith("fields."))) or "none"
                raise ctx.error(f"{key}.crosswalk", f"unknown crosswalk {name!r} (defined under [crosswalks]: {known})")
            kw["crosswalk"] = name
    if "required" in table:
        kw["required"] = ctx.boolean(table["required"], f"{key}.required")
    if "default" in table:
        if not isinstance(table["default"], str):
            raise ctx.error(f"{key}.default", f"values are strings in the standard: write \"{table['default']}\"")
        kw["default"] = table["default"]
    if "fallback" in table:
        kw["fallback"] = _field(ctx, prop, ctx.table(table["fallback"], f"{key}.fallback"), f"{key}.fallback", crosswalks)
    return FieldSpec(property=prop, key=key, **kw)


def _id(ctx: _Ctx, table: MappingABC[str, Any] | None, properties: set[str]) -> IdSpec:
    if table is None:
        raise ctx.error(
            "id", 'missing: say how the record id is derived, e.g. [id] template = "le-{creditCode}" '
            'or hash = ["identityNumber"]'
        )
    ctx.keys(table, _ID_KEYS, "id")
    given = [k for k in ("template", "hash", "property") if k in table]
    if len(given) != 1:
        raise ctx.error("id", "give exactly one of `template`, `hash` (a list of properties) or `property`")
    kw: dict[str, Any] = {}
    if "template" in table:
        template = ctx.string(table["template"], "id.template")
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ctx.error("id.template", f"bad template: {exc}") from exc
        for _, name, spec, conv in parsed:
            if name is None:
                continue
            if spec or conv:
                raise ctx.error("id.template", f"placeholders are plain {{property}} names, not {{{name}!{conv}:{spec}}}")
            if name != "row" and name not in properties:
                raise ctx.error("id.template", f"{{{name}}} is not a mapped property (nor {{row}})")
        kw["template"] = template
    elif "hash" in table:
        names = ctx.strings(table["hash"], "id.hash")
        for name in names:
            if name not in properties:
                raise ctx.error("id.hash", f"{name!r} is not a mapped property")
        if not names:
            raise ctx.error("id.hash", "name at least one property")
        kw["hash"] = names
    else:
        name = ctx.string(table["property"], "id.property")
        if name not in properties:
            raise ctx.error("id.property", f"{name!r} is not a mapped property")
        kw["property"] = name
    if "prefix" in table:
        kw["prefix"] = ctx.string(table["prefix"], "id.prefix", empty=True)
        if kw["prefix"] and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._~-]*", kw["prefix"]):
            raise ctx.error("id.prefix", "an id prefix uses A-Z a-z 0-9 . _ ~ - and starts with a letter or digit")
    if "length" in table:
        length = ctx.integer(table["length"], "id.length")
        if not 8 <= length <= 64:
            raise ctx.error("id.length", "must be 8..64 hex characters")
        kw["length"] = length
    if "salt" in table:
        kw["salt"] = ctx.string(table["salt"], "id.salt", empty=True)
    duplicates = table.get("duplicates", "reject")
    if duplicates not in ("reject", "keep"):
        raise ctx.error("id.duplicates", f"must be 'reject' or 'keep', not {duplicates!r}")
    kw["duplicates"] = duplicates
    return IdSpec(**kw)
