"""The receiver's index of what the gate reads, so `POST /gate` answers in milliseconds.

Opening the warehouse costs tens of milliseconds (its catalog is read on every open), and each
query a few more on a busy machine: more than the gate's budget over HTTP. The receiver
therefore keeps the whole organisation's `facts.Index` (open anomalies, executed rollbacks, the
change failure rate KPI, the latest runs and their outcome predictions, deployments and their
change sets' sizes, pushed commits), read with the same queries `dcicd gate` runs for one
service; a gate is then a few dictionary lookups.

A poller notices when the warehouse file (or its write-ahead log) changes and, once it has
stayed unchanged for `settle_s` (a refresh writes for a while: reading in between would only
slow it down), reads it again on a read-only connection held for the reading alone; the new
index replaces the old one in one step. A verdict is therefore at most about a second behind the
warehouse; while a writer holds it from the start, the index comes from the snapshot the last
refresh published.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb

from dcicd_platform.config import Gate
from dcicd_platform.duckdb_files import connect
from dcicd_platform.gate import audit
from dcicd_platform.gate.audit import signature
from dcicd_platform.gate.facts import Index
from dcicd_platform.gate.rules import Facts

log = logging.getLogger("dcicd.receiver.gate")


def index_of(path: Path) -> Index:
    """The whole organisation's gate facts from the warehouse (or snapshot) at path, on a
    read-only connection held for the reading alone."""
    conn = connect(path, read_only=True, config={"threads": 1})
    try:
        conn.execute("SET TimeZone = 'UTC'")
        return Index.read(conn)
    finally:
        conn.close()


class GateCache:
    """The index, kept current by a poller thread (start/stop); `facts` answers from it."""

    def __init__(self, home_root: Path, settle_s: float = 0.5, poll_s: float = 0.2) -> None:
        self.warehouse = home_root / "warehouse.duckdb"
        self.settle_s, self.poll_s = settle_s, poll_s
        self._index: Index | None = None
        self._signature: tuple | None = None
        self._source = "live"
        self._loading = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loads = 0

    def load(self) -> bool:
        """Read the index now from the live warehouse; with none yet and a writer holding it,
        from the snapshot (an older state never replaces a newer index). False when nothing
        could be read (the previous index stays until the warehouse changes again)."""
        from dcicd_platform.gate.ask import snapshot_of

        with self._loading:
            seen = signature(self.warehouse)
            self._signature = seen  # tried at this state: wait for the next change
            candidates = [(self.warehouse, "live")]
            if self._index is None:
                candidates.append((snapshot_of(self.warehouse), "snapshot"))
            for path, source in candidates:
                if not path.exists():
                    continue
                try:
                    with audit.WAREHOUSE_TURN:
                        index = index_of(path)
                except duckdb.Error as exc:
                    log.debug("reading the gate index from %s failed: %s", path, exc)
                    continue
                self._index, self._source = index, source
                self.loads += 1
                return True
            return False

    def facts(self, service: str, sha: str, environment: str, now: datetime, gate: Gate) -> Facts:
        index = self._index
        if index is None and self.load():
            index = self._index
        if index is None:
            return Facts(
                service,
                sha,
                environment,
                now,
                unreadable=f"cannot read the warehouse at {self.warehouse} (none yet, or locked"
                " with no snapshot published)",
            )
        return index.facts(service, sha, environment, now, gate, self._source)

    def own_write(self, before: tuple, after: tuple) -> None:
        """The receiver's own flush changed only ops.gates: a current index stays current."""
        if before == self._signature:
            self._signature = after

    def _watch(self) -> None:
        changed_at: float | None = None
        last = signature(self.warehouse)
        while not self._stop.wait(self.poll_s):
            now_sig = signature(self.warehouse)
            if now_sig != last:
                last, changed_at = now_sig, time.monotonic()
                continue
            settled = changed_at is None or time.monotonic() - changed_at >= self.settle_s
            if settled and now_sig != self._signature:
                try:
                    self.load()
                except Exception:  # the previous index stays; the next change tries again
                    log.exception("could not read the gate's index from the warehouse")
                changed_at = None

    def start(self) -> GateCache:
        self._thread = threading.Thread(target=self._watch, name="gate-cache", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
