"""The fast block paths agree with the plain row-by-row definitions they accelerate."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.engine._block import BlockMapper
from adapters.mapping import compile_mapping, parse_mapping
from adapters.normalise import DivisionIndex, NormaliseError, identity_check_char, normalise_identity_number
from adapters.readers import BadRow, ReaderOptions, iter_blocks, open_source

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def ident(seq: int) -> str:
    first17 = f"110105198{seq % 10}0101{seq % 1000:03d}"
    return first17 + identity_check_char(first17)


CELLS = {
    "sfzh": [ident(1), ident(2), ident(3), ident(2)[:-1] + "x", "110105491231002", "１１０１０５４９１２３１００２", "123",
             "", "无", " " + ident(7) + " "],
    "xm": ["张三", "李四", "ＡＢＣ", "\u200b王五", "", "  ", "赵\u3000六"],
    "xb": ["男", "女", "M", "f", "X", "", "男性"],
    "csrq": ["1980-01-01", "19800102", "1980年1月3日", "1980/1/4", "1980.01.05", "1980-02-30", "", "２０２０．０１．０２"],
    "hjdz": ["北京市朝阳区建国路1号", "河北省石家庄市正定县", "正定县", "朝阳区", "火星", "110105", "北京市 朝阳区", "北京市", ""],
}  # fmt: skip
COLUMNS = list(CELLS)
MAPPING = {
    "source": {"null_values": ["无"]},
    "target": {"type": "Person"},
    "id": {"hash": ["identityNumber"], "prefix": "p-"},
    "fields": {
        "identityNumber": {"column": "sfzh", "normalise": ["identity_number"], "required": True},
        "name": {"column": "xm", "normalise": ["trim", "halfwidth"]},
        "sex": {"column": "xb", "crosswalk": {"map": {"男": "1", "男性": "1", "M": "1", "女": "2", "F": "2"},
                                             "ignore_case": True}},
        "birthDate": {"column": "csrq", "normalise": ["date"],
                      "fallback": {"column": "sfzh", "normalise": ["identity_number", "identity_birth_date"]}},
        "householdDivision": {"column": "hjdz", "normalise": [{"name": "division", "level": "county"}],
                              "default": "110000"},
        "ethnicity": {"value": "01"},
    },
}  # fmt: skip

rows_strategy = st.lists(
    st.tuples(*(st.sampled_from(CELLS[c]) for c in COLUMNS)).map(list), min_size=1, max_size=40
)


def fresh(division_index: DivisionIndex, mapping: dict[str, Any] = MAPPING) -> BlockMapper:
    compiled = compile_mapping(parse_mapping(mapping), COLUMNS, lambda: division_index)
    return BlockMapper(compiled, len(COLUMNS))


@SETTINGS
@given(rows_strategy, st.booleans())
def test_block_outcomes_equal_row_by_row(division_index: DivisionIndex, rows: list[list[str]], keep: bool) -> None:
    mapping = {**MAPPING, "id": {**MAPPING["id"], "duplicates": "keep" if keep else "reject"}}
    numbers = list(range(2, len(rows) + 2))
    fast = fresh(division_index, mapping).outcomes(numbers, [list(r) for r in rows], False)
    slow = fresh(division_index, mapping)._row_by_row(numbers, [list(r) for r in rows])
    assert [(o[0], o[2], None if o[3] is None else [tuple(e.as_row()) for e in o[3]]) for o in fast] == [
        (o[0], o[2], None if o[3] is None else [tuple(e.as_row()) for e in o[3]]) for o in slow
    ]


@SETTINGS
@given(rows_strategy)
def test_block_lines_equal_the_encoded_records(division_index: DivisionIndex, rows: list[list[str]]) -> None:
    numbers = list(range(2, len(rows) + 2))
    lines, rejects = fresh(division_index).lines(numbers, [list(r) for r in rows], False)
    slow = fresh(division_index)._row_by_row(numbers, [list(r) for r in rows])
    assert [json.loads(line) for line in lines] == [o[2] for o in slow if o[2] is not None]
    assert [[e.as_row() for e in entries] for entries in rejects] == [
        [e.as_row() for e in o[3]] for o in slow if o[3] is not None
    ]


def unique_ident(i: int) -> str:
    first17 = f"110105{1900 + i // 1000:04d}0101{i % 1000:03d}"
    return first17 + identity_check_char(first17)


def test_results_stay_right_after_a_useless_memo_is_dropped(division_index: DivisionIndex) -> None:
    """Every address is new, so the division memo fills up, finds nothing and is dropped."""
    from adapters.mapping._batch import CACHE_LIMIT

    mapper = fresh(division_index)
    total = CACHE_LIMIT + 4000
    rows = [[unique_ident(i), "张三", "男", f"19{i % 90 + 10:02d}-01-01", f"北京市朝阳区建国路{i}号"] for i in range(total)]
    for start in range(0, total, 1000):
        chunk = rows[start : start + 1000]
        lines, rejects = mapper.lines(list(range(start, start + len(chunk))), chunk, False)
        assert not rejects and all('"householdDivision":"110105"' in line for line in lines)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "", " ", '"', ",", "\n", "\r\n", "x,y", '"q,""r"""', "张", "\x00"]),
                max_size=60),
       st.integers(min_value=1, max_value=7))  # fmt: skip
def test_csv_blocks_equal_csv_module_rows(pieces: list[str], size: int) -> None:
    body = "".join(pieces)
    data = "h1,h2\n" + body
    with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8", newline="", delete=False) as fh:
        fh.write(data)
    path = Path(fh.name)
    try:
        try:
            src = open_source(str(path), ReaderOptions())
            expected = list(src.rows())
            src.close()
        except Exception as exc:  # the csv module refuses it: blocks must refuse it too
            with pytest.raises(type(exc)):
                src = open_source(str(path), ReaderOptions())
                list(iter_blocks(src, size))
            return
        src = open_source(str(path), ReaderOptions())
        got = [(n, r) for numbers, rows, _ in iter_blocks(src, size) for n, r in zip(numbers, rows, strict=True)]
        src.close()
        assert got == expected
    finally:
        path.unlink(missing_ok=True)


addresses = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(["北京市朝阳区", "北京朝阳区", "河北省石家庄市正定县", "正定县", "朝阳区", "石家庄市", "河北", "内蒙古",
                     "湖北省仙桃市", "北京市 朝阳区", "北京市\u3000朝阳区", "110105", "１１０１０５", "火星", "", "吉林市船营区"]),
    st.sampled_from(["", "建国路88号", "东路1号", "县城", "市场", " 1号", "区", "x"]),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(addresses, min_size=1, max_size=20), st.sampled_from(["any", "county"]))
def test_division_block_and_fast_path_agree_with_resolve(division_index: DivisionIndex, values: list[str],
                                                        level: str) -> None:  # fmt: skip
    fast = division_index.resolver(level)
    block = fast.block(values)  # type: ignore[attr-defined]
    for value, got in zip(values, block, strict=True):
        try:
            expected: str | None = division_index.resolve(value, level=level)
        except NormaliseError:
            expected = None
            with pytest.raises(NormaliseError):
                fast(value)
        else:
            assert fast(value) == expected
        assert got is None or got == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([ident(1), ident(5), "110105491231002", ident(2).lower(), "１" * 18, "12345",
                                 ident(3) + " ", "11010519800101001\x00"]), min_size=1, max_size=12))  # fmt: skip
def test_identity_block_agrees_with_the_normaliser(values: list[str]) -> None:
    block = normalise_identity_number.block(values)  # type: ignore[attr-defined]
    for value, got in zip(values, block, strict=True):
        if got is not None:
            assert got == normalise_identity_number(value)


def test_xlsx_and_sql_rows_are_transposed_safely(tmp_path: Path, division_index: DivisionIndex) -> None:
    """Positional rows from any reader go through the same block path (None for empty cells)."""
    mapper = fresh(division_index)
    rows: list[Any] = [[ident(1), None, "男", None, None], [ident(2), "李四", None, "1980-01-01", "正定县"]]
    outcomes = mapper.outcomes([2, 3], rows, False)
    assert outcomes[0][2] is not None and outcomes[0][2]["householdDivision"] == "110000"  # the default
    assert "name" not in outcomes[0][2] and "sex" not in outcomes[1][2]  # type: ignore[operator]
    assert isinstance(BadRow("x", "y"), BadRow)
    # the CSV module and the block reader agree on a quoted file written by the csv module itself
    buf = io.StringIO()
    csv.writer(buf).writerows([COLUMNS, *[[ident(i), 'a "quoted", name', "男", "", "正定县"] for i in range(5)]])
    path = tmp_path / "q.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    src = open_source(str(path), ReaderOptions())
    blocks = list(iter_blocks(src, 2))
    src.close()
    assert [n for b in blocks for n in b[0]] == [2, 3, 4, 5, 6]
    assert blocks[0][1][0][1] == 'a "quoted", name'


class _DictsOnly:
    """The validator without its column check: every record is made and validated as a dict."""

    def __init__(self, validator: Any) -> None:
        self.validate_many = validator.validate_many
        self.validate = validator.validate


CHECKED_CELLS = {
    "sfzh": [ident(1), ident(2), ident(3), ident(2)[:-1] + "0", ident(4)[:-1] + "5", "110105491231002", "123", "", "无"],
    "xm": ["张三", "李四", "ＡＢＣ", "", "x" * 60, 'a"b\\c'],
    "xb": ["男", "女", "M", "X", "", "男性"],
    "csrq": ["1980-01-01", "19800102", "1981年1月3日", "1980/1/4", "1980-02-30", "", "２０２０．０１．０２"],
    "hjdz": ["北京市朝阳区建国路1号", "河北省石家庄市正定县", "正定县", "火星", "北京市 朝阳区", "北京市", ""],
}  # fmt: skip
checked_rows = st.lists(st.tuples(*(st.sampled_from(CHECKED_CELLS[c]) for c in COLUMNS)), min_size=1, max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=checked_rows)
def test_records_checked_column_by_column_are_written_as_validated_dicts(
    tmp_path_factory: pytest.TempPathFactory, validator: Any, divisions_from_standard: Any, rows: list[tuple[str, ...]]
) -> None:
    """The engine's validated path that checks the complete rows' columns without making records
    (``Validator.unclear_rows``) writes the same files as validating every record as a dict."""
    from adapters.engine import run_mapping

    tmp = tmp_path_factory.mktemp("checked")
    buf = io.StringIO()
    csv.writer(buf).writerows([COLUMNS, *rows])
    src = tmp / "in.csv"
    src.write_text(buf.getvalue(), encoding="utf-8")
    mapping = parse_mapping({**MAPPING, "id": {"hash": ["identityNumber"], "prefix": "p-", "duplicates": "keep"}})
    files = []
    for v in (validator, _DictsOnly(validator)):
        out, rej = tmp / f"out-{len(files)}.jsonl", tmp / f"rej-{len(files)}.csv"
        report = run_mapping(mapping, str(src), out, rej, validator=v, divisions=divisions_from_standard)
        files.append((out.read_bytes(), rej.read_bytes(), report.rows_out, report.rows_rejected, report.warnings))
    assert files[0] == files[1]
