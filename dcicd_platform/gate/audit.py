"""Every verdict in `ops.gates`, written through a journal so that answering never waits for
the warehouse's single writer.

`record` appends the verdict to `$DCICD_HOME/gates/pending.ndjson` and fsyncs it (a verdict
given is never lost); `flush` moves the journal into `ops.gates` when the warehouse is free:
`dcicd gate` flushes before it exits, the receiver every second, and a refresh at its end
(the snapshot step) takes what is left. A gate_id is written once (`INSERT OR IGNORE`), so two
flushers of the same journal cannot duplicate a row.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from dcicd_platform.duckdb_files import connect
from dcicd_platform.gate.rules import Verdict

GATES_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.gates (
    gate_id VARCHAR PRIMARY KEY, service VARCHAR, sha VARCHAR, environment VARCHAR,
    mode VARCHAR, verdict VARCHAR, enforced_verdict VARCHAR, reasons JSON,
    why_undecided VARCHAR, asked_by VARCHAR, read_from VARCHAR, asked_at TIMESTAMPTZ,
    latency_ms DOUBLE);
"""
COLUMN_TYPES = {
    "gate_id": "VARCHAR", "service": "VARCHAR", "sha": "VARCHAR", "environment": "VARCHAR",
    "mode": "VARCHAR", "verdict": "VARCHAR", "enforced_verdict": "VARCHAR", "reasons": "JSON",
    "why_undecided": "VARCHAR", "asked_by": "VARCHAR", "read_from": "VARCHAR",
    "asked_at": "TIMESTAMPTZ", "latency_ms": "DOUBLE",
}  # fmt: skip

# In one process the gate's read-only connections and a flush's writer take turns: DuckDB
# refuses a file opened twice in one process with different access modes.
WAREHOUSE_TURN = threading.Lock()


def journal_dir(home_root: Path) -> Path:
    return home_root / "gates"


@contextmanager
def _journal_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_gate_id() -> str:
    return f"gate:{uuid.uuid4().hex}"


def record(home_root: Path, verdict: Verdict, asked_by: str, latency_ms: float) -> None:
    """Append the verdict (its gate_id set) to the journal, durably."""
    row = {
        "gate_id": verdict.gate_id,
        "service": verdict.service,
        "sha": verdict.sha,
        "environment": verdict.environment,
        "mode": verdict.mode,
        "verdict": verdict.verdict,
        "enforced_verdict": verdict.enforced,
        "reasons": [r.__dict__ for r in verdict.reasons],
        "why_undecided": verdict.why_undecided,
        "asked_by": asked_by,
        "read_from": verdict.source,
        "asked_at": verdict.asked_at.isoformat(),
        "latency_ms": round(latency_ms, 3),
    }
    line = (json.dumps(row, separators=(",", ":")) + "\n").encode()
    folder = journal_dir(home_root)
    with _journal_lock(folder):
        fd = os.open(folder / "pending.ndjson", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def pending(home_root: Path) -> int:
    """Verdicts in the journal not yet in ops.gates."""
    folder = journal_dir(home_root)
    return sum(
        len(path.read_bytes().splitlines())
        for path in folder.glob("*.ndjson")
        if path.exists()
    ) if folder.exists() else 0  # fmt: skip


def _claim(folder: Path) -> list[Path]:
    """The journal's files to write: the pending one renamed (new verdicts start a new one),
    and any an interrupted flush left."""
    if not folder.exists():
        return []
    with _journal_lock(folder):
        current = folder / "pending.ndjson"
        if current.exists() and current.stat().st_size:
            current.rename(folder / f"flushing-{uuid.uuid4().hex}.ndjson")
    return sorted(folder.glob("flushing-*.ndjson"))


def write_journal(conn: duckdb.DuckDBPyConnection, home_root: Path) -> int:
    """Move the journal into ops.gates on a writer's connection; returns the rows written."""
    files = _claim(journal_dir(home_root))
    if not files:
        return 0
    readable = [str(path) for path in files if path.exists() and path.stat().st_size]
    conn.execute(GATES_DDL)
    written = 0
    if readable:
        types = ", ".join(f"'{c}': '{t}'" for c, t in COLUMN_TYPES.items())
        written = conn.execute(
            f"INSERT OR IGNORE INTO ops.gates ({', '.join(COLUMN_TYPES)})"
            f" SELECT {', '.join(COLUMN_TYPES)} FROM read_json(?, format = 'newline_delimited',"
            f" columns = {{{types}}}, ignore_errors = true)",
            [readable],
        ).fetchone()[0]
    for path in files:
        path.unlink(missing_ok=True)
    return written


def signature(warehouse: Path) -> tuple:
    """What changes when anything is written: the file's and its log's size and time."""
    out = []
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        try:
            st = path.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def flush(
    home_root: Path, warehouse: Path, observe: Callable[[tuple, tuple], None] | None = None
) -> int | None:
    """Write the journal into ops.gates if the warehouse is free now; None when a writer holds
    it (the journal stays for the next flush). observe(before, after): the warehouse's
    signature while this flush alone held it, and after it (the only change was ops.gates)."""
    folder = journal_dir(home_root)
    if not folder.exists() or not any(folder.glob("*.ndjson")):
        return 0
    if not warehouse.exists():  # never create a warehouse: the first refresh does
        return None
    with WAREHOUSE_TURN:
        try:
            conn = connect(warehouse)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                return None
            raise
        before = signature(warehouse)
        try:
            conn.execute("SET TimeZone = 'UTC'")
            written = write_journal(conn, home_root)
        finally:
            conn.close()
        if observe is not None:
            observe(before, signature(warehouse))
        return written
