"""Load envelope files into raw.events and raw.quarantine: every line accounted for, once.

A file is loaded in one transaction (a crash leaves nothing half-loaded) and recorded in the
raw.files ledger under its content hash (the same bytes are never loaded twice). Lines are read
in large chunks and handed to DuckDB as Arrow arrays; DuckDB validates and deduplicates them.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from dcicd_platform.ingest.schema import ensure_raw_schema
from dcicd_platform.ingest.validation import validation_sql

CHUNK_BYTES = 256 * 1024 * 1024  # large chunks: fewer, bigger appends commit much faster
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

    def as_dict(self) -> dict:
        return asdict(self)


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


def _open(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _raw_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, decompressed, in chunks that end on a line boundary."""
    try:
        with _open(path) as handle:
            carry = b""
            first = True
            while True:
                block = handle.read(CHUNK_BYTES)
                if first:
                    first = False
                    if block.startswith(_BOMS):
                        raise UnreadableFile("not UTF-8 text (UTF-16/32 byte order mark)")
                    block = block.removeprefix(b"\xef\xbb\xbf")
                if not block:
                    if carry:
                        yield carry
                    return
                cut = block.rfind(b"\n")
                if cut < 0:
                    carry += block
                    continue
                yield carry + block[: cut + 1]
                carry = block[cut + 1 :]
    except (OSError, EOFError, zlib.error) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if isinstance(exc, gzip.BadGzipFile):
            detail = f"not a gzip file ({exc})"
        raise UnreadableFile(detail) from exc


def _line_offsets(chunk: bytes) -> list[int]:
    """Start offsets of each line in a chunk, and the chunk's end."""
    offsets = [0]
    find = chunk.find
    at = find(b"\n")
    while at >= 0:
        offsets.append(at + 1)
        at = find(b"\n", at + 1)
    if offsets[-1] != len(chunk):
        offsets.append(len(chunk))
    return offsets


def _batch(chunk: bytes, first_line: int) -> tuple[pa.Table, int]:
    """A chunk as an Arrow table of lines (zero-copy), and how many lines are not UTF-8.

    Lines keep their newline; JSON ignores it and the quarantine trims it.
    """
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
            raw = chunk[start:end]
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


_KEYS_DDL = "CREATE OR REPLACE TEMP TABLE dcicd_keys (line_number BIGINT, delivery_id VARCHAR)"
_INSERT_EVENTS = """
INSERT INTO raw.events
SELECT delivery_id, source, event_type, received_at, payload, $file, line_number, $sha
FROM dcicd_chunk WHERE reason IS NULL
"""
_INSERT_QUARANTINE = """
INSERT INTO raw.quarantine
SELECT $file, line_number, reason, raw_line, now(), $sha
FROM dcicd_chunk WHERE reason IS NOT NULL
"""
# A delivery seen earlier in this file, or loaded from another file before, is a duplicate.
_DROP_DUPLICATES = """
DELETE FROM raw.events
WHERE content_sha256 = $sha AND line_number IN (
    SELECT line_number FROM (
        SELECT line_number, delivery_id,
            row_number() OVER (PARTITION BY delivery_id ORDER BY line_number) AS nth
        FROM dcicd_keys
    ) k
    WHERE nth > 1 OR EXISTS (
        SELECT 1 FROM raw.events e
        WHERE e.delivery_id = k.delivery_id AND e.content_sha256 <> $sha)
)
"""


def _prefetched(path: Path) -> Iterator[tuple[pa.Table, int]]:
    """Batches of a file, read one ahead on a thread while DuckDB validates the current one."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcicd-read") as pool:
        chunks = _raw_chunks(path)
        first_line = 1

        def next_batch() -> tuple[pa.Table, int] | None:
            chunk = next(chunks, None)
            return None if chunk is None else _batch(chunk, first_line)

        pending = pool.submit(next_batch)
        while (ready := pending.result()) is not None:
            first_line += ready[0].num_rows
            pending = pool.submit(next_batch)
            yield ready


def _load_lines(
    conn: duckdb.DuckDBPyConnection, path: Path, name: str, sha: str
) -> tuple[int, int]:
    """Validate and insert every line of a file, chunk by chunk; returns (lines, quarantined).

    Runs inside the caller's transaction. Every valid line is inserted, then duplicates are
    deleted in one pass at the end, so history is scanned once per file, not once per chunk.
    """
    conn.execute(_KEYS_DDL)
    lines = quarantined = not_utf8 = 0
    params = {"file": name, "sha": sha}
    for batch, bad in _prefetched(path):
        lines += batch.num_rows
        not_utf8 += bad
        conn.register("dcicd_batch", batch)
        conn.execute(f"CREATE OR REPLACE TEMP TABLE dcicd_chunk AS {_VALIDATED}")
        conn.unregister("dcicd_batch")
        conn.execute(_INSERT_EVENTS, params)
        conn.execute(_INSERT_QUARANTINE, params)
        quarantined += conn.execute(
            "SELECT count(*) FROM dcicd_chunk WHERE reason IS NOT NULL"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO dcicd_keys SELECT line_number, delivery_id FROM dcicd_chunk"
            " WHERE reason IS NULL"
        )
    if not_utf8 and not_utf8 == lines:
        raise UnreadableFile("not UTF-8 text")
    conn.execute(_DROP_DUPLICATES, {"sha": sha})
    return lines, quarantined


def load_file(
    conn: duckdb.DuckDBPyConnection, path: Path, landing_name: str | None = None
) -> FileReport:
    """Load one file in one transaction; a file already in the ledger is not read again."""
    name = landing_name or str(path)
    try:
        digest = content_hash(path)
    except UnreadableFile as exc:
        return FileReport(name, "unreadable", error=str(exc))
    ensure_raw_schema(conn)
    known = conn.execute(
        "SELECT landing_file FROM raw.files WHERE content_sha256 = ?", [digest]
    ).fetchone()
    if known:
        return FileReport(name, "already_loaded", digest, error=f"same content as {known[0]}")
    conn.execute("BEGIN TRANSACTION")
    try:
        lines, quarantined = _load_lines(conn, path, name, digest)
        loaded = conn.execute(
            "SELECT count(*) FROM raw.events WHERE content_sha256 = ?", [digest]
        ).fetchone()[0]
        report = FileReport(
            name, "loaded", digest, lines, loaded, lines - loaded - quarantined, quarantined
        )
        conn.execute(
            "INSERT INTO raw.files VALUES (?, ?, ?, ?, ?, ?, ?, now())",
            [digest, name, path.stat().st_size, lines, loaded, report.duplicates, quarantined],
        )
        conn.execute("COMMIT")
    except UnreadableFile as exc:
        conn.execute("ROLLBACK")
        return FileReport(name, "unreadable", digest, error=str(exc))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("DROP TABLE IF EXISTS dcicd_chunk")
        conn.execute("DROP TABLE IF EXISTS dcicd_keys")
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
