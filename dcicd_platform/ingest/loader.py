"""Load envelope files into raw.events and raw.quarantine: every line accounted for, once.

A file is loaded in one transaction (a crash leaves nothing half-loaded) and recorded in the
raw.files ledger under its content hash (the same bytes are never loaded twice). A thread reads
the file in large chunks and streams its lines to DuckDB as Arrow batches, into one INSERT that
validates them (the SQL of validation.py); duplicates are then removed in one pass.

A batch of files loads `LOAD_PARALLEL` at a time, each in its own transaction on its own
connection, and commits one file at a time in the batch's order; a file is checked against
the deliveries the files before it committed, so the outcome is that of a load one file
after another.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import queue
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from dcicd_platform.ingest.schema import ensure_raw_schema
from dcicd_platform.ingest.validation import validation_sql

if TYPE_CHECKING:  # pyarrow is imported where lines are read, not when the code location loads
    import pyarrow as pa

# Chunks below glibc's mmap threshold are recycled by malloc: fresh 64 MB buffers cost a page
# fault per 4 kB, as much system time as the reading itself.
CHUNK_BYTES = 8 * 1024 * 1024
LOAD_PARALLEL = 2  # files prepared at once while the one before them commits
LANDING_SUFFIXES = (".ndjson", ".ndjson.gz")
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_VALIDATED = validation_sql("dcicd_batch")


class UnreadableFile(Exception):
    """The file as a whole cannot be read (missing, not gzip, not UTF-8 text...)."""


@dataclass
class FileReport:
    """What happened to one file; loaded + duplicates + quarantined = lines."""

    path: str
    status: str  # loaded | already_loaded | unreadable
    content_sha256: str | None = None
    lines: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    error: str | None = None


def is_landing_file(path: Path) -> bool:
    """A complete envelope file: visible, with an envelope suffix (writers rename into these)."""
    return path.is_file() and not path.name.startswith(".") and path.name.endswith(LANDING_SUFFIXES)


def discover(paths: Iterable[Path]) -> list[Path]:
    """The envelope files named, and those inside named folders (sorted, recursively)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if is_landing_file(p)))
        else:
            found.append(path)
    return found


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes as stored: the ledger's key and the sensor's run key."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from exc


class _HashingFile(io.RawIOBase):
    """A file whose bytes, as stored, are hashed as they are read (the ledger's key).

    The hash reads the caller's buffer in place (no copy) and releases the GIL while it runs.
    """

    def __init__(self, path: Path, digest) -> None:
        self._file = path.open("rb", buffering=0)
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._file.readinto(buffer)
        if count:
            with memoryview(buffer) as view:
                self._digest.update(view[:count])
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _open(path: Path, digest):
    raw = _HashingFile(path, digest)
    if path.name.endswith(".gz"):
        return gzip.GzipFile(fileobj=io.BufferedReader(raw, CHUNK_BYTES), mode="rb")
    return raw


def _raw_chunks(path: Path, digest) -> Iterator[memoryview]:
    """The file's bytes, decompressed, in chunks that end on a line boundary.

    Each chunk is a fresh buffer read in place (no copies): Arrow arrays point into it. The
    stored bytes are hashed into `digest` on the way.
    """
    try:
        with _open(path, digest) as handle:
            carry = b""
            first = True
            while True:
                buffer = bytearray(len(carry) + CHUNK_BYTES)
                buffer[: len(carry)] = carry
                size = len(carry) + _read_fully(handle, memoryview(buffer)[len(carry) :])
                if first:
                    first = False
                    head = bytes(buffer[: min(size, 4)])
                    if head.startswith(_BOMS):
                        raise UnreadableFile("not UTF-8 text (UTF-16/32 byte order mark)")
                    if head.startswith(b"\xef\xbb\xbf"):
                        del buffer[:3]
                        size -= 3
                if size == len(carry):  # end of file
                    if carry:
                        yield memoryview(buffer)[:size]
                    return
                cut = buffer.rfind(b"\n", 0, size)
                if cut < 0:
                    carry = bytes(buffer[:size])
                    continue
                carry = bytes(buffer[cut + 1 : size])
                yield memoryview(buffer)[: cut + 1]
    except (OSError, EOFError, zlib.error) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if isinstance(exc, gzip.BadGzipFile):
            detail = f"not a gzip file ({exc})"
        raise UnreadableFile(detail) from exc


def _read_fully(handle, view: memoryview) -> int:
    """Fill view from handle as far as the file goes (raw reads may return less)."""
    total = 0
    while total < len(view):
        count = handle.readinto(view[total:])
        if not count:
            break
        total += count
    return total


def _line_offsets(chunk: memoryview) -> list[int]:
    """Start offsets of each line in a chunk, and the chunk's end."""
    buffer, end = chunk.obj, len(chunk)
    offsets = [0]
    find = buffer.find
    at = find(b"\n", 0, end)
    while at >= 0:
        offsets.append(at + 1)
        at = find(b"\n", at + 1, end)
    if offsets[-1] != end:
        offsets.append(end)
    return offsets


def _batch(chunk: memoryview, first_line: int) -> tuple[pa.Table, int]:
    """A chunk as an Arrow table of lines (zero-copy), and how many lines are not UTF-8.

    Lines keep their newline; JSON ignores it and the quarantine trims it.
    """
    import pyarrow as pa

    offsets = _line_offsets(chunk)
    count = len(offsets) - 1
    lines = pa.LargeStringArray.from_buffers(
        count, pa.array(offsets, pa.int64()).buffers()[1], pa.py_buffer(chunk)
    )
    reasons: pa.Array = pa.nulls(count, pa.string())
    bad = 0
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        texts, why = [], []
        for start, end in zip(offsets, offsets[1:], strict=False):
            raw = bytes(chunk[start:end])
            try:
                texts.append(raw.decode("utf-8"))
                why.append(None)
            except UnicodeDecodeError as exc:
                texts.append(raw.decode("utf-8", "backslashreplace"))
                why.append(f"line is not UTF-8 text (bad byte at offset {exc.start})")
                bad += 1
        lines, reasons = pa.array(texts, pa.large_string()), pa.array(why, pa.string())
    numbers = pa.array(range(first_line, first_line + count), pa.int64())
    return pa.table({"line_number": numbers, "line": lines, "pre_reason": reasons}), bad


_INSERT_EVENTS = f"""
INSERT INTO raw.events
SELECT delivery_id, source, event_type, received_at, payload, $file, line_number, $load
FROM ({_VALIDATED}) WHERE reason IS NULL
"""
_INSERT_QUARANTINE = f"""
INSERT INTO raw.quarantine
SELECT $file, line_number, reason, raw_line, now(), $load
FROM ({_VALIDATED}) WHERE reason IS NOT NULL
"""
# A delivery seen earlier in this file, or loaded from another file before, is a duplicate.
_DROP_DUPLICATES = """
DELETE FROM raw.events
WHERE load_id = $load AND line_number IN (
    SELECT line_number FROM (
        SELECT line_number, delivery_id,
            row_number() OVER (PARTITION BY delivery_id ORDER BY line_number) AS nth
        FROM raw.events WHERE load_id = $load
    ) k
    WHERE nth > 1 OR EXISTS (
        SELECT 1 FROM raw.events e
        WHERE e.delivery_id = k.delivery_id AND e.load_id <> $load)
)
"""


def _batch_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [("line_number", pa.int64()), ("line", pa.large_string()), ("pre_reason", pa.string())]
    )


_BATCH_ROWS = 2048  # small record batches let DuckDB validate on every core


@dataclass
class _ReadStats:
    lines: int = 0
    not_utf8: int = 0
    error: UnreadableFile | None = None
    digest: object = field(default_factory=hashlib.sha256)


def _line_reader(path: Path, stats: _ReadStats) -> pa.RecordBatchReader:
    """The file's lines as a stream of Arrow batches; DuckDB pulls them as it needs them.

    A thread reads and splits the file ahead of DuckDB (four chunks at most), so reading,
    hashing and validating overlap.
    """
    import pyarrow as pa

    ready: queue.Queue = queue.Queue(maxsize=4)
    done, stop = object(), threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in _raw_chunks(path, stats.digest):
                table, bad = _batch(chunk, stats.lines + 1)
                stats.lines += table.num_rows
                stats.not_utf8 += bad
                if not put(table):
                    return  # DuckDB stopped reading: the statement failed
        except UnreadableFile as exc:
            stats.error = exc
        except Exception as exc:  # surfaced on DuckDB's side below
            stats.error = UnreadableFile(str(exc) or type(exc).__name__)
        put(done)

    def batches() -> Iterator[pa.RecordBatch]:
        producer = threading.Thread(target=produce, name="dcicd-read", daemon=True)
        producer.start()
        try:
            while (table := ready.get()) is not done:
                yield from table.to_batches(max_chunksize=_BATCH_ROWS)
        finally:
            stop.set()
            producer.join()
        if stats.error:
            raise stats.error

    return pa.RecordBatchReader.from_batches(_batch_schema(), batches())


def _stream(conn: duckdb.DuckDBPyConnection, path: Path, sql: str, params: dict) -> tuple[int, int]:
    """An INSERT over the file's validated lines, in one streaming statement: (rows, lines)."""
    stats = _ReadStats()
    conn.register("dcicd_batch", _line_reader(path, stats))
    try:
        inserted = conn.execute(sql, params).fetchone()[0]
    except Exception:
        if stats.error:
            raise stats.error from None
        raise
    conn.unregister("dcicd_batch")
    if stats.not_utf8 and stats.not_utf8 == stats.lines:
        raise UnreadableFile("not UTF-8 text")
    return inserted, stats.lines, stats.digest.hexdigest()


def _load_lines(
    conn: duckdb.DuckDBPyConnection, path: Path, name: str, load_id: str
) -> tuple[int, int, str]:
    """Validate and insert every line of a file; returns (lines, quarantined, content hash).

    Runs inside the caller's transaction. One streaming statement inserts every valid line
    (and hashes the file); only a file with bad lines is read a second time, for its
    quarantine. Duplicates are then deleted in one pass, so history is scanned once per file.
    """
    params = {"file": name, "load": load_id}
    valid, lines, digest = _stream(conn, path, _INSERT_EVENTS, params)
    quarantined = 0
    if valid < lines:
        quarantined, _, _ = _stream(conn, path, _INSERT_QUARANTINE, params)
    conn.execute(_DROP_DUPLICATES, {"load": load_id})
    return lines, quarantined, digest


def _already_loaded(conn, name: str, stat) -> str | None:
    """The ledger's name for a file with this name, size and mtime (not read again), if any."""
    row = conn.execute(
        "SELECT landing_file FROM raw.files WHERE landing_file = ? AND size_bytes = ?"
        " AND mtime_ns = ?",
        [name, stat.st_size, stat.st_mtime_ns],
    ).fetchone()
    return row[0] if row else None


@dataclass
class _Prepared:
    """A file read, validated and inserted in its own open transaction, not yet committed.

    `report` is set instead when the file was settled without one (unreadable, loaded before).
    """

    name: str
    report: FileReport | None = None
    conn: duckdb.DuckDBPyConnection | None = None
    stat: os.stat_result | None = None
    load_id: str = ""
    lines: int = 0
    quarantined: int = 0
    digest: str = ""


@dataclass
class _Batch:
    """What the files committed so far in one batch hold, for the files after them.

    Their transactions began before these commits, so they cannot see them: each later file is
    checked against this record (file identity, content hash, delivery ids) before it commits.
    """

    identities: dict[tuple[str, int, int], str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    deliveries: list[pa.Array] = field(default_factory=list)


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("ROLLBACK")


def _prepare(conn: duckdb.DuckDBPyConnection, path: Path, name: str) -> _Prepared:
    """Phase one of a load: everything but the checks against the batch and the commit.

    Leaves the transaction open on `conn` when the file has lines to load; an UnreadableFile
    rolls it back and is reported, any other error rolls it back and is raised.
    """
    try:
        stat = path.stat()
        if not path.is_file():
            raise UnreadableFile("not a file")
    except OSError as exc:
        return _Prepared(name, FileReport(name, "unreadable", error=exc.strerror or str(exc)))
    except UnreadableFile as exc:
        return _Prepared(name, FileReport(name, "unreadable", error=str(exc)))
    if known := _already_loaded(conn, name, stat):
        return _Prepared(
            name, FileReport(name, "already_loaded", error=f"loaded before as {known}")
        )
    load_id = str(uuid.uuid4())
    conn.execute("BEGIN TRANSACTION")
    try:
        lines, quarantined, digest = _load_lines(conn, path, name, load_id)
    except UnreadableFile as exc:
        _rollback(conn)
        return _Prepared(name, FileReport(name, "unreadable", error=str(exc)))
    except BaseException:
        _rollback(conn)
        raise
    return _Prepared(name, None, conn, stat, load_id, lines, quarantined, digest)


def _commit(prepared: _Prepared, batch: _Batch, keep_deliveries: bool) -> FileReport:
    """Phase two: check the file against the ledger and the batch's earlier files, then commit.

    Deliveries that an earlier file of the batch loaded are deleted here, so they count as
    this file's duplicates exactly as in a load one file after another.
    """
    if prepared.report is not None:
        return prepared.report
    conn, name, stat, load_id = prepared.conn, prepared.name, prepared.stat, prepared.load_id
    digest = prepared.digest
    try:
        identity = (name, stat.st_size, stat.st_mtime_ns)
        if identity in batch.identities:
            _rollback(conn)
            known = batch.identities[identity]
            return FileReport(name, "already_loaded", error=f"loaded before as {known}")
        known = batch.digests.get(digest)
        if known is None:
            row = conn.execute(
                "SELECT landing_file FROM raw.files WHERE content_sha256 = ?", [digest]
            ).fetchone()
            known = row[0] if row else None
        if known is not None:
            _rollback(conn)
            return FileReport(name, "already_loaded", digest, error=f"same content as {known}")
        if batch.deliveries:
            import pyarrow as pa

            earlier = pa.table({"delivery_id": pa.chunked_array(batch.deliveries, pa.string())})
            conn.register("dcicd_batch_deliveries", earlier)
            conn.execute(
                "DELETE FROM raw.events WHERE load_id = $load AND delivery_id IN"
                " (SELECT delivery_id FROM dcicd_batch_deliveries)",
                {"load": load_id},
            )
            conn.unregister("dcicd_batch_deliveries")
        loaded = conn.execute(
            "SELECT count(*) FROM raw.events WHERE load_id = ?", [load_id]
        ).fetchone()[0]
        lines, quarantined = prepared.lines, prepared.quarantined
        report = FileReport(
            name, "loaded", digest, lines, loaded, lines - loaded - quarantined, quarantined
        )
        conn.execute(
            "INSERT INTO raw.files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [digest, load_id, name, stat.st_size, stat.st_mtime_ns, lines, loaded]
            + [report.duplicates, quarantined],
        )
        ids = None
        if keep_deliveries:
            ids = conn.sql(
                "SELECT delivery_id FROM raw.events WHERE load_id = $load", params={"load": load_id}
            ).to_arrow_table()
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    batch.identities[identity] = name
    batch.digests[digest] = name
    if ids is not None:
        batch.deliveries.extend(ids.column("delivery_id").cast("string").chunks)
    return report


def load_file(
    conn: duckdb.DuckDBPyConnection, path: Path, landing_name: str | None = None
) -> FileReport:
    """Load one file in one transaction; the same bytes are never loaded twice.

    A file the ledger has under the same name, size and mtime is not read at all; any other
    file is hashed while it loads, and rolled back if the ledger already holds its content.
    """
    ensure_raw_schema(conn)
    return _commit(_prepare(conn, path, landing_name or str(path)), _Batch(), False)


def _worker_connection(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Another connection to the same warehouse, with the session's settings (UTC above all)."""
    cursor = conn.cursor()
    cursor.execute("SET TimeZone = 'UTC'")
    cursor.execute("SET enable_progress_bar = false")
    return cursor


def load_files(
    conn: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    name_of: Callable[[Path], str] = str,
    progress: Callable[[FileReport], None] | None = None,
    parallel: int = LOAD_PARALLEL,
) -> list[FileReport]:
    """Load files, `parallel` at a time, with the outcome of loading them one after another.

    Each file is read, validated and inserted in its own transaction on its own connection,
    while the files before it commit; the commits then run one at a time in the files' order,
    each after checking its file against those committed before it in the batch. So a
    delivery in two files is loaded from the first and counted a duplicate in the second; an
    unreadable file is reported and the others still load; any other error stops the batch
    after the files before it committed, and no file after it is committed.
    """
    paths = list(paths)
    ensure_raw_schema(conn)
    reports: list[FileReport] = []
    if parallel <= 1 or len(paths) <= 1:
        # Each file's transaction begins after the one before committed: it sees its rows.
        for path in paths:
            report = _commit(_prepare(conn, path, name_of(path)), _Batch(), False)
            reports.append(report)
            if progress:
                progress(report)
        return reports

    def prepare(path: Path) -> _Prepared:
        worker = _worker_connection(conn)
        try:
            prepared = _prepare(worker, path, name_of(path))
        except BaseException:
            worker.close()
            raise
        if prepared.conn is None:
            worker.close()
        return prepared

    batch = _Batch()
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dcicd-load") as pool:
        pending = [pool.submit(prepare, path) for path in paths[:parallel]]
        try:
            for i in range(len(paths)):
                prepared = pending[i].result()
                if i + parallel < len(paths):
                    pending.append(pool.submit(prepare, paths[i + parallel]))
                try:
                    report = _commit(prepared, batch, i + 1 < len(paths))
                finally:
                    if prepared.conn is not None:
                        prepared.conn.close()
                reports.append(report)
                if progress:
                    progress(report)
        except BaseException:
            # The files after the failing one were prepared, never committed: undo them.
            for future in pending[len(reports) + 1 :]:
                try:
                    later = future.result()
                except BaseException:
                    continue
                if later.conn is not None:
                    _rollback(later.conn)
                    later.conn.close()
            raise
    return reports
