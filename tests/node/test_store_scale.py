"""A node holding 1,000,000 records streams them in constant memory (peak RSS < 200 MB).

The store is seeded with 1,000,000 Person-like records by one SQL statement (fast
test setup; the write path's own figures come from the benchmark), or, laid out as version 2
of the store's schema kept it, by the same statement (the node then upgrades it when it opens
it, within the same memory limit). Then a fresh
process, as a node would, opens the store, streams every record through
``iter_records`` (parsing each), runs a ``modified_since`` query and an
``upsert_many`` batch against the big store, and reports its peak RSS.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from test_store_migrate import v2_schema  # tests/node is on sys.path

from node.store import Store
from node.store._schema import records_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 1_000_000
LIMIT_MB = 200

SEED = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
INSERT INTO {table} (id, version, hash, body, deleted, modified_us, seq)
SELECT printf('p%07d', i), 1, randomblob(16),
       json_object('birthDate', '1949-12-31', 'ethnicity', '01', 'householdDivision', '110105',
                   'id', printf('p%07d', i), 'identityNumber', '11010519491231002X', 'name', '张三' || i,
                   'sex', '1', 'type', 'Person'),
       0, 1700000000000000 + i, i + 1
FROM n
"""

NODE = textwrap.dedent("""
    import datetime as dt, json, sys, time
    from node.store import Store, us_to_datetime

    def peak_mb():
        # VmHWM belongs to this process image; getrusage's ru_maxrss would also count the
        # forked pytest parent's pages (Linux carries maxrss across execve)
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        raise RuntimeError("no VmHWM in /proc/self/status")

    path, n = sys.argv[1], int(sys.argv[2])
    with Store(path) as store:
        t = time.perf_counter()
        count, last = 0, ""
        for r in store.iter_records("population", page_size=1000):
            data = r.data
            assert data is not None and data["id"] == r.id and r.id > last
            last = r.id
            count += 1
        elapsed = time.perf_counter() - t
        since = us_to_datetime(1700000000000000 + n - 2500)
        recent = sum(1 for _ in store.iter_records("population", modified_since=since, page_size=300))
        batch = [(f"p{i:07d}", {"id": f"p{i:07d}", "name": "改"}) for i in range(0, n, n // 5000)]
        results = store.upsert_many("population", batch)
    print(json.dumps({"count": count, "iterate_s": round(elapsed, 2), "recent": recent,
                      "versions": sorted({r.version for r in results}),
                      "peak_rss_mb": peak_mb()}))
""")


def _seed(path: Path) -> None:
    with Store(path, durability="normal") as store:
        store.ensure_dataset("population", "Person")
        table = records_table(store.dataset_num("population") or 0)
    with closing(sqlite3.connect(path)) as conn:
        with conn:
            conn.execute(SEED.format(table=table), (N,))
            conn.execute("UPDATE feed SET seq = ?", (N,))


def _seed_version_2(path: Path) -> None:
    """A store as version 2 of the schema kept it (one records table and change feed for all
    datasets): the node upgrades it when it opens it."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(v2_schema())
        with conn:
            conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
            conn.execute("INSERT INTO datasets VALUES ('population', 'Person', 0, '{}', 1, 1)")
            conn.execute("INSERT INTO datasets VALUES ('inbox', 'Person', 0, '{}', 2, 2)")
            conn.execute(SEED.replace("INSERT INTO {table} (", "INSERT INTO records (dataset, ")
                         .replace("SELECT printf(", "SELECT 'population', printf("), (N,))
            conn.execute("INSERT INTO changes (seq, dataset, record_id, version, op, at_us) "
                         "SELECT seq, dataset, id, version, 'upsert', modified_us FROM records")
        conn.execute("PRAGMA journal_mode=WAL")


@pytest.mark.parametrize("seed", [_seed, _seed_version_2], ids=["current", "upgraded-from-version-2"])
def test_streaming_a_million_records_stays_under_200_mb(tmp_path: Path, seed: Callable[[Path], None]) -> None:
    path = tmp_path / "store.db"
    seed(path)
    conn = sqlite3.connect(path)
    # fold the seed's write-ahead log into the database before the node opens it, as a store
    # that has been running would be; otherwise the node starts by replaying a 300 MB WAL
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    proc = subprocess.run([sys.executable, "-c", NODE, str(path), str(N)], capture_output=True, text=True,
                          timeout=280)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    print(figures)
    assert figures["count"] == N
    assert figures["recent"] == 2500
    assert figures["versions"] == [2]
    assert figures["peak_rss_mb"] < LIMIT_MB, figures
