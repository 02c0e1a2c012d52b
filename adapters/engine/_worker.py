"""The validation worker process: ``python -m adapters.engine._worker STANDARD_DIR RECORD_TYPE``.

Reads pickled batches of records from stdin (length-prefixed frames), validates each
with the standard's fast validator, and writes back, per batch, the number of reports
and the verdicts of the records that are not simply valid. An empty frame ends it.
Started by :class:`adapters.engine._pipeline.ValidatorPool`; not meant to be run by hand.
"""

from __future__ import annotations

import os
import sys

from adapters.engine._frames import read_frame, write_frame

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - runs in the worker process
    args = sys.argv[1:] if argv is None else argv
    standard_dir = args[0] or None
    record_type = args[1]
    # frames go to the real stdout; anything a library prints goes to stderr instead
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        from adapters.engine._validator import load_validator, validate_batch

        validator = load_validator(standard_dir)
    except Exception as exc:  # tell the parent why instead of dying silently
        write_frame(out, ("error", f"{type(exc).__name__}: {exc}"))
        return 1
    write_frame(out, ("ready", None))
    while True:
        records = read_frame(sys.stdin.buffer)
        if records is None:
            return 0
        try:
            reports = validate_batch(validator, records, record_type)
        except Exception as exc:
            write_frame(out, ("error", f"{type(exc).__name__}: {exc}"))
            return 1
        special = [
            (i, r.valid, tuple((v.path, v.constraint, v.severity, v.message_zh, v.message_en) for v in r.violations),
             getattr(r, "error", None))
            for i, r in enumerate(reports)
            if not r.valid or r.violations
        ]  # fmt: skip
        write_frame(out, ("ok", (len(reports), special)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
