"""Readers: CSV encodings and delimiters, JSON Lines, Excel and SQL, with the row numbers a person sees."""

from __future__ import annotations

import codecs
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adapters.readers import BadRow, ReaderOptions, detect_encoding, format_for, open_source, redact_dsn
from node.errors import ConfigError, InputError

ROWS = [["xm", "sfzh", "hjdz"], ["张三", "11010519491231002X", "北京市朝阳区"], ["李四", "110105491231002", "河北省"]]


def read_all(path: Path | str, **options: Any) -> tuple[Any, list[tuple[int, Any]]]:
    source = open_source(str(path), ReaderOptions(**options))
    try:
        return source, list(source.rows())
    finally:
        source.close()


def write_csv(path: Path, rows: list[list[str]], encoding: str, delimiter: str = ",", bom: bytes = b"") -> Path:
    text = "\r\n".join(delimiter.join(r) for r in rows) + "\r\n"
    path.write_bytes(bom + text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("encoding", "bom", "detected"),
    [
        ("gb18030", b"", "gb18030"),
        ("gbk", b"", "gb18030"),
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16"),
    ],
)
def test_csv_encoding_is_detected(tmp_path: Path, encoding: str, bom: bytes, detected: str) -> None:
    path = write_csv(tmp_path / "in.csv", ROWS, encoding, bom=bom)
    source, rows = read_all(path)
    assert source.details["encoding"] == detected
    assert source.columns == ("xm", "sfzh", "hjdz")  # no BOM left in the first name
    assert rows == [(2, ROWS[1]), (3, ROWS[2])]


def test_csv_encoding_given_in_the_mapping(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ROWS, "gbk")
    source, rows = read_all(path, encoding="GBK")
    assert source.details["encoding"] == "gb18030"  # GBK is read through its superset
    assert rows[0][1][0] == "张三"
    path = write_csv(tmp_path / "bom.csv", ROWS, "utf-8", bom=codecs.BOM_UTF8)
    source, _ = read_all(path, encoding="utf-8")
    assert source.details["encoding"] == "utf-8-sig" and source.columns is not None and source.columns[0] == "xm"
    with pytest.raises(ConfigError, match=r"source\.encoding.*klingon"):
        read_all(path, encoding="klingon")


@pytest.mark.parametrize("bad_line", [2, 3000])
def test_csv_wrong_encoding_names_the_file_and_line(tmp_path: Path, bad_line: int) -> None:
    rows = [["a", "b"]] + [["1", "x"]] * (bad_line - 2) + [["2", "张三"]] + [["3", "y"]] * 10
    path = write_csv(tmp_path / "in.csv", rows, "gb18030")
    with pytest.raises(InputError, match=rf"in\.csv: line {bad_line} is not valid utf-8.*source\.encoding"):
        read_all(path, encoding="utf-8")


@pytest.mark.parametrize(("delimiter", "given"), [("\t", "\t"), (";", "auto"), ("|", "auto"), ("\t", "auto")])
def test_csv_delimiters(tmp_path: Path, delimiter: str, given: str) -> None:
    path = write_csv(tmp_path / "in.tsv", ROWS, "utf-8", delimiter=delimiter)
    source, rows = read_all(path, delimiter=given)
    assert source.details["delimiter"] == delimiter
    assert rows[1] == (3, ROWS[2])


def test_csv_without_header_takes_column_names_from_the_mapping(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ROWS[1:], "utf-8")
    source, rows = read_all(path, header=False, columns=("xm", "sfzh", "hjdz"))
    assert source.columns == ("xm", "sfzh", "hjdz")
    assert rows[0] == (1, ROWS[1])
    with pytest.raises(ConfigError, match="source.columns"):
        read_all(path, header=False)


def test_csv_row_numbers_blank_lines_quoted_newlines_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('a,b\n1,2\n\n3,"x\ny"\n4,5,6\n7\n8,9,,\n', encoding="utf-8")
    _, rows = read_all(path)
    numbers = [n for n, _ in rows]
    assert numbers == [2, 4, 6, 7, 8]  # line numbers; the blank line 3 is not a record
    assert rows[1][1] == ["3", "x\ny"]
    assert isinstance(rows[2][1], BadRow) and "3 fields" in rows[2][1].reason
    assert isinstance(rows[3][1], BadRow) and rows[3][1].value == "7"
    assert rows[4][1] == ["8", "9"]  # trailing empty cells beyond the header are dropped


def test_csv_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.csv.*empty"):
        read_all(path)


def test_missing_input_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.csv"):
        read_all(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="nope.xlsx"):
        read_all(tmp_path / "nope.xlsx")


def test_jsonl_reads_objects_with_decimals(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"a": 0.1, "b": "x", "c": 12345678901234567890}\n\n[1,2]\n{"a": \n{"a": null, "n": true}\n',
        encoding="utf-8",
    )
    source, rows = read_all(path)
    assert source.columns is None
    assert rows[0][0] == 1 and str(rows[0][1]["a"]) == "0.1" and rows[0][1]["c"] == 12345678901234567890
    assert rows[1][0] == 3 and isinstance(rows[1][1], BadRow) and "JSON object" in rows[1][1].reason
    assert rows[2][0] == 4 and isinstance(rows[2][1], BadRow) and "not valid JSON" in rows[2][1].reason
    assert rows[3] == (5, {"a": None, "n": True})


def test_jsonl_with_bom_and_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + '{"xm": "张三"}\n'.encode())
    _, rows = read_all(path)
    assert rows == [(1, {"xm": "张三"})]
    path.write_bytes('{"xm": "张三"}\n'.encode("gb18030"))
    _, rows = read_all(path, encoding="gb18030")
    assert rows == [(1, {"xm": "张三"})]


def make_xlsx(path: Path) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "说明"
    ws.append(["这是说明页"])
    data = wb.create_sheet("数据")
    data.append(["导出时间", "2025-01-01"])
    data.append(["名称", "成立日期", "资本", "代码", "时间"])
    data.append(["甲公司", dt.datetime(2015, 3, 1), 500, 20200115, dt.datetime(2020, 1, 2, 8, 30)])
    data.append([None, None, None, None, None])
    data.append(["乙公司", "2018年7月5日", 300.5, None, dt.date(2021, 4, 2)])
    wb.save(path)
    return path


def test_xlsx_sheet_header_row_and_typed_cells(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "in.xlsx")
    source, rows = read_all(path, sheet="数据", header_row=2)
    assert source.columns == ("名称", "成立日期", "资本", "代码", "时间")
    assert source.details["sheet"] == "数据"
    assert rows == [
        (3, ["甲公司", "2015-03-01", "500", "20200115", "2020-01-02T08:30:00"]),
        (5, ["乙公司", "2018年7月5日", "300.5", None, "2021-04-02"]),
    ]
    _, by_number = read_all(path, sheet=2, header_row=2)
    assert by_number == rows


def test_xlsx_errors_name_the_key(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "in.xlsx")
    with pytest.raises(ConfigError, match=r"source\.sheet.*'缺失'.*说明, 数据"):
        read_all(path, sheet="缺失")
    with pytest.raises(ConfigError, match=r"source\.sheet"):
        read_all(path, sheet=3)
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a zip", encoding="utf-8")
    with pytest.raises(InputError, match="bad.xlsx"):
        read_all(bad)


def make_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE rk (xm TEXT, sfzh TEXT, jfjs NUMERIC, csrq DATE)")
        conn.executemany("INSERT INTO rk VALUES (?, ?, ?, ?)",
                         [("张三", "11010519491231002X", 8000, "1949-12-31"), ("李四", None, 0.5, None)])  # fmt: skip
    conn.close()
    return path


def test_sql_over_sqlite_read_only(tmp_path: Path) -> None:
    db = make_db(tmp_path / "rk.db")
    source, rows = read_all(db, format="sql", query="SELECT xm, sfzh, jfjs FROM rk ORDER BY xm")
    assert source.columns == ("xm", "sfzh", "jfjs")
    assert rows == [(1, ["张三", "11010519491231002X", "8000"]), (2, ["李四", None, "0.5"])]
    _, rows = read_all(db, format="sql", query="SELECT xm FROM rk WHERE xm = ?", params=("李四",))
    assert rows == [(1, ["李四"])]
    with pytest.raises(InputError, match="query"):
        read_all(db, format="sql", query="SELECT nope FROM rk")
    with pytest.raises(InputError, match="not found"):
        read_all(tmp_path / "missing.db", format="sql", query="SELECT 1")
    assert not (tmp_path / "missing.db").exists()  # never created by a typo


def test_sql_any_dbapi_connect_with_kwargs(tmp_path: Path) -> None:
    db = make_db(tmp_path / "rk.db")
    uri = f"file:{db}?mode=ro"
    _, rows = read_all(uri, format="sql", connect="sqlite3:connect", kwargs={"uri": True}, query="SELECT count(*) FROM rk")
    assert rows == [(1, ["2"])]
    with pytest.raises(ConfigError, match=r"source\.connect"):
        read_all(uri, format="sql", connect="no_such_module_x:connect", query="SELECT 1")
    with pytest.raises(ConfigError, match=r"source\.connect"):
        read_all(uri, format="sql", connect="sqlite3", query="SELECT 1")


def test_formats_from_suffix_and_dsn_redaction() -> None:
    assert format_for("a.CSV", ReaderOptions()) == "csv"
    assert format_for("a.ndjson", ReaderOptions()) == "jsonl"
    assert format_for("a.xlsx", ReaderOptions()) == "xlsx"
    assert format_for("anything", ReaderOptions(format="sql")) == "sql"
    with pytest.raises(ConfigError, match="source.format"):
        format_for("a.parquet", ReaderOptions())
    assert redact_dsn("postgresql://user:secret@db/x") == "postgresql://***@db/x"
    assert "secret" not in redact_dsn("host=db user=u password=secret")


def test_detect_encoding_falls_back_sensibly() -> None:
    assert detect_encoding("数据".encode("gb18030") * 100) == "gb18030"
    assert detect_encoding("数据".encode() * 100) == "utf-8"
    assert detect_encoding(b"plain ascii") == "utf-8"
