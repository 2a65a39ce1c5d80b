"""Load envelope files into raw.events and raw.quarantine: every line accounted for, once.

A file is loaded in one transaction (a crash leaves nothing half-loaded) and recorded in the
raw.files ledger under its content hash (the same bytes are never loaded twice). A thread reads
the file in large chunks and streams its lines to DuckDB as Arrow batches, into one INSERT that
validates them (the SQL of validation.py); duplicates are then removed in one pass.
"""

from __future__ import annotations

import gzip
import hashlib
import io
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

CHUNK_BYTES = 64 * 1024 * 1024
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
    """A file whose bytes, as stored, are hashed as they are read (the ledger's key)."""

    def __init__(self, path: Path, digest) -> None:
        self._file = path.open("rb")
        self._digest = digest
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcicd-hash")
        self._pending: list = []

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._file.readinto(buffer)
        # Hashing releases the GIL: on its own thread it overlaps with DuckDB's work.
        self._pending.append(self._hasher.submit(self._digest.update, bytes(buffer[:count])))
        return count

    def close(self) -> None:
        for pending in self._pending:
            pending.result()
        self._hasher.shutdown()
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

    A thread reads and splits the file ahead of DuckDB (two chunks at most), so reading,
    hashing and validating overlap.
    """
    import pyarrow as pa

    ready: queue.Queue = queue.Queue(maxsize=2)
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


def load_file(
    conn: duckdb.DuckDBPyConnection, path: Path, landing_name: str | None = None
) -> FileReport:
    """Load one file in one transaction; the same bytes are never loaded twice.

    A file the ledger has under the same name, size and mtime is not read at all; any other
    file is hashed while it loads, and rolled back if the ledger already holds its content.
    """
    name = landing_name or str(path)
    try:
        stat = path.stat()
        if not path.is_file():
            raise UnreadableFile("not a file")
    except OSError as exc:
        return FileReport(name, "unreadable", error=exc.strerror or str(exc))
    except UnreadableFile as exc:
        return FileReport(name, "unreadable", error=str(exc))
    ensure_raw_schema(conn)
    if known := _already_loaded(conn, name, stat):
        return FileReport(name, "already_loaded", error=f"loaded before as {known}")
    load_id = str(uuid.uuid4())
    conn.execute("BEGIN TRANSACTION")
    try:
        lines, quarantined, digest = _load_lines(conn, path, name, load_id)
        known = conn.execute(
            "SELECT landing_file FROM raw.files WHERE content_sha256 = ?", [digest]
        ).fetchone()
        if known:
            conn.execute("ROLLBACK")
            return FileReport(name, "already_loaded", digest, error=f"same content as {known[0]}")
        loaded = conn.execute(
            "SELECT count(*) FROM raw.events WHERE load_id = ?", [load_id]
        ).fetchone()[0]
        report = FileReport(
            name, "loaded", digest, lines, loaded, lines - loaded - quarantined, quarantined
        )
        conn.execute(
            "INSERT INTO raw.files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [
                digest,
                load_id,
                name,
                stat.st_size,
                stat.st_mtime_ns,
                lines,
                loaded,
                report.duplicates,
                quarantined,
            ],
        )
        conn.execute("COMMIT")
    except UnreadableFile as exc:
        conn.execute("ROLLBACK")
        return FileReport(name, "unreadable", error=str(exc))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return report


def load_files(
    conn: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    name_of: Callable[[Path], str] = str,
    progress: Callable[[FileReport], None] | None = None,
) -> list[FileReport]:
    """Load files one by one; an unreadable file is reported and the others still load."""
    reports = []
    for path in paths:
        report = load_file(conn, path, name_of(path))
        reports.append(report)
        if progress:
            progress(report)
    return reports
