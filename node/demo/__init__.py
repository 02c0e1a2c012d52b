"""``shulian demo``: a federation of three departments of 石家庄市, end to end, on one machine.

    from node.demo import run_demo
    outcome = run_demo(Path("demo-out"))      # narrates on the terminal; stops what it started
    outcome.exit_code, outcome.results

It starts a Tansu Kafka broker and three ``shulian-node run`` daemons (市公安局, 市人社局,
正定县民政局) on free loopback ports with a generated federation CA and a copy of the
standard holding the national division list, then shows, step by step: the standard,
catalogs, an access request approved, a county CSV mapped by an adapter and pushed up,
records received over gRPC and Kafka (projected and masked), refusals with their basis, a
forged Kafka message quarantined, the conformance kit, verified evidence logs, and the
operator's status and peers commands. Optional components (adapters, the Kafka exchange,
the conformance kit's node cases) are used when installed; otherwise their steps say
"skipped: <component> not installed".
"""

from __future__ import annotations

from node.demo._narrate import FAILED, OK, SKIPPED, StepResult
from node.demo._run import MARKER, STEPS, DemoOutcome, run_demo

__all__ = ["run_demo", "DemoOutcome", "StepResult", "STEPS", "MARKER", "OK", "SKIPPED", "FAILED"]
