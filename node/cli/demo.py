"""``shulian demo``: the main job (what ``make demo`` runs); the work is in :mod:`node.demo`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from node.cli._common import fail_cleanly

__all__ = ["demo"]


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True,
              help="Folder for the demo's artifacts (catalogs, reports, logs, the nodes' folders). "
                   "A previous demo's folder is emptied first; any other non-empty folder is refused.")
@click.option("--divisions", type=click.Path(exists=True, path_type=Path), default=None,
              help="The national division list (a folder of code,name CSV files, or one file). "
                   "Default: ../shared/data/divisions beside the working folder or the repository.")
@fail_cleanly
def demo(out_dir: Path, divisions: Path | None) -> None:
    """Run a federation of three departments of 石家庄市 end to end and narrate it.

    Starts a Tansu Kafka broker and three `shulian-node run` daemons (市公安局,
    市人社局, 正定县民政局) on free loopback ports with a generated federation CA,
    then shows catalogs, an access request approved, a county CSV mapped and pushed
    up, records received over gRPC and Kafka (projected and masked), refusals with
    their basis, a forged Kafka message quarantined, the conformance kit, verified
    evidence logs, and `shulian status` / `shulian peers check`. Everything it
    started is stopped at the end, also on Ctrl-C or failure.

    \b
    Example:
      shulian demo --out demo-out
      shulian demo --out /tmp/demo --divisions ../shared/data/divisions

    Exit codes: 0 every step ok (or skipped because a component is not installed),
    1 a step failed, 2 bad options, 3 the broker or a node could not start,
    130 interrupted.
    """
    from rich.console import Console

    from node.demo import run_demo

    console = Console()
    if not console.is_terminal:  # a log file or CI: wide enough for the tables
        console = Console(width=max(console.width, 120))
    outcome = run_demo(out_dir, divisions=divisions, console=console)
    sys.exit(outcome.exit_code)
