"""The terminal summary: a table of cases and the counts."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from conformance._model import Outcome, Result, Run

__all__ = ["print_summary", "verdict_line", "make_console"]

_STYLE = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "bold red",
    Outcome.CANT_TELL: "magenta",
    Outcome.INAPPLICABLE: "dim",
    Outcome.UNTESTED: "yellow",
}
_ALL_ROWS = 80


def make_console() -> Console:
    """A console for the summary: the terminal's width, or 160 columns when writing to a log (CI)."""
    probe = Console()
    return Console(soft_wrap=False, width=None if probe.is_terminal else 160)


def verdict_line(run: Run) -> str:
    mandatory = run.mandatory
    if run.conforms:
        return f"CONFORMS: all {len(mandatory)} mandatory case(s) passed"
    c = run.counts(mandatory)
    parts = [f"{n} {o.label}" for o in Outcome if o is not Outcome.PASSED and (n := c[o.value])]
    return (f"DOES NOT CONFORM: {len(mandatory) - run.mandatory_passed} of {len(mandatory)} mandatory case(s) "
            f"did not pass ({', '.join(parts)})")


def _cases_table(rows: list[Result], lang: str) -> Table:
    t = Table(show_lines=False, expand=False)
    t.add_column("case", overflow="fold", max_width=32)
    t.add_column("level", no_wrap=True)
    t.add_column("outcome", no_wrap=True)
    t.add_column("title")
    t.add_column("message")
    for r in rows:
        c = r.case
        t.add_row(c.id, c.level, Text(r.outcome.label, style=_STYLE[r.outcome]),
                  c.name_zh if lang == "zh" else c.name_en, r.message)
    return t


def print_summary(run: Run, console: Console, *, verbose: bool = False, lang: str = "en") -> None:
    """The cases that did not pass (every case with ``verbose``), the counts and the verdict."""
    rows = list(run.results)
    if not verbose:
        rows = [r for r in rows if r.outcome is not Outcome.PASSED]
    passed_hidden = len(run.results) - len(rows)
    shown = rows[:_ALL_ROWS] if not verbose else rows
    if shown:
        console.print(_cases_table(shown, lang))
    if passed_hidden or len(shown) < len(rows):
        hidden = [f"{passed_hidden} passed"] if passed_hidden else []
        hidden += [f"{len(rows) - len(shown)} more"] if len(shown) < len(rows) else []
        console.print(f"({' and '.join(hidden)} case(s) not listed; --verbose lists every case)")
    counts = Table(title=f"shulian-conform {run.mode}: standard {run.standard.version}"
                   + (f", engine {run.engine}" if run.engine else ""))
    counts.add_column("outcome")
    counts.add_column("mandatory", justify="right")
    counts.add_column("optional", justify="right")
    counts.add_column("total", justify="right")
    mandatory = run.counts(run.mandatory)
    optional = run.counts([r for r in run.results if not r.case.mandatory])
    total = run.counts()
    for o in Outcome:
        counts.add_row(Text(o.label, style=_STYLE[o]), str(mandatory[o.value]), str(optional[o.value]),
                       str(total[o.value]))
    counts.add_row("all", str(len(run.mandatory)), str(len(run.results) - len(run.mandatory)), str(len(run.results)))
    console.print(counts)
    console.print(Text(verdict_line(run), style="bold green" if run.conforms else "bold red"))
