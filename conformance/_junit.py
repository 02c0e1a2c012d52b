"""JUnit XML: what CI systems read.

One ``<testsuite>`` per manifest (or per input file), one ``<testcase>`` per case.
passed -> a bare testcase; failed -> ``<failure>``; can't tell -> ``<error>``;
not run / not applicable -> ``<skipped>`` (a case not run is never a pass).
Each testcase carries the case's id, level, clauses and Chinese title as properties.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET

from conformance._model import Outcome, Result, Run

__all__ = ["junit_xml"]

_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(text: str) -> str:
    return _BAD_XML.sub("\ufffd", text)


def _counts(results: list[Result]) -> dict[str, str]:
    return {
        "tests": str(len(results)),
        "failures": str(sum(r.outcome is Outcome.FAILED for r in results)),
        "errors": str(sum(r.outcome is Outcome.CANT_TELL for r in results)),
        "skipped": str(sum(r.outcome in (Outcome.UNTESTED, Outcome.INAPPLICABLE) for r in results)),
        "time": f"{sum(r.duration for r in results):.3f}",
    }


def junit_xml(run: Run) -> bytes:
    """The run as JUnit XML (UTF-8 bytes with an XML declaration)."""
    root = ET.Element("testsuites", {"name": "shulian-conform", **_counts(list(run.results))})
    suites: dict[str, list[Result]] = {}
    for r in run.results:
        suites.setdefault(r.case.suite or run.mode, []).append(r)
    stamp = run.finished.isoformat()
    host = socket.gethostname()
    for name, results in suites.items():
        suite = ET.SubElement(root, "testsuite", {"name": _x(name), "timestamp": stamp, "hostname": host,
                                                  **_counts(results)})
        props = ET.SubElement(suite, "properties")
        for k, v in (("standard", run.standard.version), ("engine", run.engine or ""),
                     ("tool", f"shulian-conform {run.tool_version}")):
            ET.SubElement(props, "property", {"name": k, "value": _x(v)})
        for r in results:
            c = r.case
            tc = ET.SubElement(suite, "testcase", {
                "classname": _x(f"shulian-conform.{name}"),
                "name": _x(f"{c.id} {c.name_en}"),
                "time": f"{r.duration:.3f}",
            })
            cprops = ET.SubElement(tc, "properties")
            for k, v in (("id", c.id), ("level", c.level), ("outcome", r.outcome.value), ("name_zh", c.name_zh),
                         ("subject", r.subject.iri), *(("clause", s) for s in c.clauses)):
                ET.SubElement(cprops, "property", {"name": k, "value": _x(v)})
            body = _x("\n".join(r.details)) if r.details else None
            if r.outcome is Outcome.FAILED:
                el = ET.SubElement(tc, "failure", {"message": _x(r.message), "type": "failed"})
                el.text = body
            elif r.outcome is Outcome.CANT_TELL:
                el = ET.SubElement(tc, "error", {"message": _x(r.message), "type": "cantTell"})
                el.text = body
            elif r.outcome in (Outcome.UNTESTED, Outcome.INAPPLICABLE):
                ET.SubElement(tc, "skipped", {"message": _x(f"{r.outcome.label}: {r.message}"), "type": r.outcome.value})
            elif body:
                ET.SubElement(tc, "system-out").text = body
    ET.indent(root)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out + b"\n"
