"""Publishing the snapshot writes what changed, and never under a reader's feet."""

import os
import subprocess
import sys

import duckdb

from dcicd_platform.resources import (
    publish_snapshot,
    read_only_connection,
    snapshot_path,
    snapshot_slots,
)

HOLD_OPEN = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
print(conn.execute("SELECT count(*) FROM t").fetchone()[0], flush=True)
sys.stdin.readline()
print(conn.execute("SELECT count(*), sum(x) FROM t").fetchone(), flush=True)
"""

HOLD_THE_LOCK = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("INSERT INTO t SELECT x, 'unpublished' FROM range(15, 20) r(x)")
print("locked", flush=True)
sys.stdin.readline()
conn.close()
"""


def grow(conn: duckdb.DuckDBPyConnection, rows: int) -> None:
    """Add rows of incompressible text, so the file has many blocks a change does not touch."""
    conn.execute(
        "INSERT INTO t SELECT x, md5(x::VARCHAR) || md5((x * 7)::VARCHAR)"
        " FROM range((SELECT count(*) FROM t), (SELECT count(*) FROM t) + ?) r(x)",
        [rows],
    )


def published(warehouse) -> tuple[int, int]:
    with duckdb.connect(str(snapshot_path(warehouse)), read_only=True) as conn:
        return conn.execute("SELECT count(*), sum(x) FROM t").fetchone()


def test_a_publication_writes_only_what_changed_and_switches_readers(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    conn = duckdb.connect(str(warehouse))
    conn.execute("CREATE TABLE t (x BIGINT, s VARCHAR)")
    grow(conn, 2_000_000)
    link, first = publish_snapshot(conn, warehouse)
    assert (
        link == snapshot_path(warehouse) and os.readlink(link) == snapshot_slots(warehouse)[0].name
    )
    assert first == warehouse.stat().st_size  # the first copy is written whole
    assert published(warehouse) == conn.execute("SELECT count(*), sum(x) FROM t").fetchone()

    # The second publication fills the other copy (whole: it did not exist), the third brings
    # the first up to date in place, writing only the chunks the change touched.
    grow(conn, 1_000)
    _, second = publish_snapshot(conn, warehouse)
    assert os.readlink(link) == snapshot_slots(warehouse)[1].name
    grow(conn, 1_000)
    _, third = publish_snapshot(conn, warehouse)
    size = warehouse.stat().st_size
    assert os.readlink(link) == snapshot_slots(warehouse)[0].name
    assert second == size or second < size
    assert 0 < third < size / 4, (third, size)
    assert snapshot_slots(warehouse)[0].read_bytes() == warehouse.read_bytes()
    assert published(warehouse) == (2_002_000, sum(range(2_002_000)))

    # Nothing changed: nothing but the spare's catching up on the previous change is written.
    publish_snapshot(conn, warehouse)
    _, unchanged = publish_snapshot(conn, warehouse)
    assert unchanged == 0
    conn.close()


def test_a_reader_keeps_the_copy_it_opened(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    conn = duckdb.connect(str(warehouse))
    conn.execute("CREATE TABLE t (x BIGINT, s VARCHAR)")
    grow(conn, 200_000)
    publish_snapshot(conn, warehouse)  # copy a
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(snapshot_path(warehouse))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "200000"
        grow(conn, 1_000)
        publish_snapshot(conn, warehouse)  # copy b
        grow(conn, 1_000)
        # Copy a is open in the reader: it is written whole under a new name instead.
        link, written = publish_snapshot(conn, warehouse)
        assert written == warehouse.stat().st_size
        assert os.readlink(link) == snapshot_slots(warehouse)[0].name
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == str((200_000, sum(range(200_000))))
    finally:
        reader.kill()
        reader.wait()
    assert published(warehouse) == (202_000, sum(range(202_000)))
    conn.close()


def test_readers_answer_from_the_snapshot_while_a_writer_holds_the_warehouse(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("CREATE TABLE t (x BIGINT, s VARCHAR)")
        grow(conn, 10)
        publish_snapshot(conn, warehouse)
        grow(conn, 5)
        publish_snapshot(conn, warehouse)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        with read_only_connection(warehouse, wait_s=5, live_wait_s=0.2) as reader:
            assert reader.dcicd_source == "snapshot"
            assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 15
        writer.stdin.write("\n")
        writer.stdin.flush()
        writer.wait(timeout=30)
    finally:
        writer.kill()
    with read_only_connection(warehouse) as reader:
        assert reader.dcicd_source == "live"
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 20
