"""Build hook for the optional C accelerators (everything else is in pyproject.toml).

``node._fastread`` reads and encodes outgoing query batches in C: one SQLite step loop
per page (its own read connection, linked against the system SQLite), projection and
masking, the protobuf records and the batch digest input. It is optional: where it
cannot be built (no C compiler or SQLite headers), the install goes on and the node
runs the equivalent Python code (node/service/_outgoing.py, node/store/_reads.py),
which the tests hold it to byte for byte.

``node._fastprep`` prepares the common Push batch in C: it decodes each record (a flat JSON
object), checks it carries a good id, and writes its canonical body and BLAKE2b digest, in one
call per batch. It is optional too (no library needed): without it node.service._batch does
the same in Python, and the tests hold it to that path.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("node._fastread", ["node/_fastread.c"], libraries=["sqlite3", "crypto"], optional=True),
                   Extension("node._fastprep", ["node/_fastprep.c"], optional=True)])
