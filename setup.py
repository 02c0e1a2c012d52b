"""Build hook for the optional C accelerator (everything else is in pyproject.toml).

``node._fastread`` reads and encodes outgoing query batches in C: one SQLite step loop
per page (its own read connection, linked against the system SQLite), projection and
masking, the protobuf records and the batch digest input. It is optional: where it
cannot be built (no C compiler or SQLite headers), the install goes on and the node
runs the equivalent Python code (node/service/_outgoing.py, node/store/_reads.py),
which the tests hold it to byte for byte.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("node._fastread", ["node/_fastread.c"], libraries=["sqlite3", "crypto"], optional=True)])
