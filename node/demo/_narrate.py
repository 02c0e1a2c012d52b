"""How the demo talks: numbered steps, the commands an operator would type, tables, a summary."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["Narrator", "StepResult", "Skip", "StepFailed", "OK", "SKIPPED", "FAILED"]

OK, SKIPPED, FAILED = "ok", "skipped", "failed"


class Skip(Exception):
    """The step cannot run here (a component is not installed); the message says which."""


class StepFailed(Exception):
    """The step ran and did not show what it should."""


@dataclass
class StepResult:
    n: int
    title: str
    status: str = OK
    detail: str = ""
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 2)
        return out


class Narrator:
    """Prints the demo's story; keeps each step's result."""

    def __init__(self, console: Console, total: int, error_log: Path | None = None) -> None:
        self.console = console
        self.total = total
        self.error_log = error_log
        self.results: list[StepResult] = []

    # ---- text ---------------------------------------------------------------------------------
    def say(self, text: str, style: str | None = None) -> None:
        self.console.print(escape(text), style=style, highlight=False)

    def rich(self, markup: str) -> None:
        self.console.print(markup, highlight=False)

    def command(self, shown: str) -> None:
        """An operator command (what the demo runs), shown as typed."""
        self.console.print(f"  [dim]$[/dim] [cyan]{escape(shown)}[/cyan]", highlight=False, soft_wrap=True)

    def output(self, text: str, limit: int = 30) -> None:
        lines = text.rstrip("\n").splitlines()
        for line in lines[:limit]:
            self.console.print(f"    {escape(line)}", highlight=False, soft_wrap=True)
        if len(lines) > limit:
            self.console.print(f"    [dim]… {len(lines) - limit} more lines[/dim]", highlight=False)

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        table = Table(title=title, title_justify="left", title_style="bold", show_lines=False, pad_edge=False)
        for h in headers:
            table.add_column(h, overflow="fold")
        for row in rows:
            table.add_row(*[escape(str(c)) for c in row])
        self.console.print(table)

    # ---- steps ----------------------------------------------------------------------------------
    @contextmanager
    def step(self, n: int, title: str) -> Iterator[StepResult]:
        result = StepResult(n, title)
        self.console.rule(f"[bold]{n}/{self.total}  {escape(title)}", align="left")
        started = time.perf_counter()
        try:
            yield result
        except Skip as exc:
            result.status, result.detail = SKIPPED, f"skipped: {exc}"
        except StepFailed as exc:
            result.status, result.detail = FAILED, str(exc)
        except Exception as exc:  # noqa: BLE001 - one broken step must not hide the others
            result.status = FAILED
            result.detail = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._record_traceback(n, title)
        except BaseException:  # Ctrl-C, SIGTERM, cancellation: recorded, then on its way
            result.status, result.detail = FAILED, "interrupted"
            raise
        finally:
            result.seconds = time.perf_counter() - started
            self.results.append(result)
            mark = {OK: "[green]✓ ok[/green]", SKIPPED: "[yellow]– skipped[/yellow]", FAILED: "[red]✗ FAILED[/red]"}
            note = result.detail if result.status != OK else ""
            self.rich(f"  {mark[result.status]} [dim]({result.seconds:.1f} s)[/dim] {escape(note)}")

    def _record_traceback(self, n: int, title: str) -> None:
        if self.error_log is None:
            return
        self.error_log.parent.mkdir(parents=True, exist_ok=True)
        with self.error_log.open("a", encoding="utf-8") as fh:
            fh.write(f"--- step {n}: {title}\n{traceback.format_exc()}\n")

    # ---- the end ----------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return all(r.status != FAILED for r in self.results)

    def summary(self, out: Path, seconds: float, setup_seconds: float) -> None:
        table = Table(title="数链 Shulian demo — summary", title_justify="left", title_style="bold")
        for h in ("#", "step", "result", "what it showed"):
            table.add_column(h, overflow="fold")
        style = {OK: "green", SKIPPED: "yellow", FAILED: "red"}
        for r in self.results:
            table.add_row(str(r.n), escape(r.title), f"[{style[r.status]}]{r.status}[/]", escape(r.detail))
        self.console.rule()
        self.console.print(table)
        counts = {s: sum(1 for r in self.results if r.status == s) for s in (OK, SKIPPED, FAILED)}
        if len(self.results) < self.total:
            verdict = f"[red]stopped after {len(self.results)} of {self.total} steps[/red]"
        elif self.ok:
            verdict = "[green]all steps ok[/green]" if not counts[SKIPPED] else \
                "[green]ok[/green] ([yellow]some steps skipped[/yellow])"
        else:
            verdict = "[red]FAILED[/red]"
        self.rich(f"{verdict}: {counts[OK]} ok, {counts[SKIPPED]} skipped, {counts[FAILED]} failed; "
                  f"{seconds:.1f} s ({setup_seconds:.1f} s setting up the federation); artifacts in {escape(str(out))}")


def dump(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
