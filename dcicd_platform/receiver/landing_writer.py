"""Durable appends to the landing folder, published as complete files.

The current file is hidden (`.receiver-<time>-<pid>-<n>.ndjson.part`), so neither the landing
sensor nor `dcicd ingest` sees it. Appends from concurrent requests are written together and
made durable with one fsync (group commit): each request is answered only after the fsync that
covers its line. A file is published by an atomic rename to `receiver-<time>-<pid>-<n>.ndjson`
once it reaches the size limit or its age limit, and on shutdown. A receiver killed outright
leaves its current file behind; the next receiver on that folder cuts any partial last line
(never acknowledged: the fsync had not returned) and publishes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

PART_PREFIX = ".receiver-"
PART_SUFFIX = ".ndjson.part"


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def published_name(part: Path) -> Path:
    return part.with_name(part.name.removeprefix(".").removesuffix(".part"))


def recover_parts(folder: Path) -> list[Path]:
    """Publish the files receivers that died left behind, cut to their last complete line.

    A part file another live receiver holds (it keeps a lock on it) is left alone.
    """
    published = []
    for part in sorted(folder.glob(f"{PART_PREFIX}*{PART_SUFFIX}")):
        try:
            fd = os.open(part, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live receiver's current file
            size = os.fstat(fd).st_size
            keep = _complete_length(fd, size)
            if keep != size:
                os.ftruncate(fd, keep)
            os.fsync(fd)
            if keep == 0:
                part.unlink()
            else:
                os.rename(part, published_name(part))
                published.append(published_name(part))
        finally:
            os.close(fd)
    if published:
        _fsync_folder(folder)
    return published


def _complete_length(fd: int, size: int, chunk: int = 1 << 16) -> int:
    """The length up to and including the last newline (0 if there is none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        data = os.pread(fd, end - start, start)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


class LandingWriter:
    """Appends envelope lines durably; `await append(lines)` returns once they are on disk."""

    def __init__(self, folder: Path, max_bytes: int = 64 << 20, max_age_s: float = 60.0) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._lock = threading.Lock()  # one thread touches the file at a time
        self._fd: int | None = None
        self._part: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._count = 0
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future] = []
        self._flushing = False
        self.published: list[Path] = []

    # --- the event loop side -----------------------------------------------------------
    async def append(self, lines: bytes) -> None:
        """Write whole lines (each ending in a newline); returns when they are fsync'd."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append(lines)
        self._waiters.append(done)
        if not self._flushing:
            self._flushing = True
            loop.create_task(self._flush_all())
        await done

    async def _flush_all(self) -> None:
        try:
            while self._pending:
                batch, waiters = b"".join(self._pending), self._waiters
                self._pending, self._waiters = [], []
                try:
                    await asyncio.to_thread(self._write, batch)
                except Exception as exc:  # every request in the batch gets the error (a 5xx)
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                else:
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_result(None)
        finally:
            self._flushing = False

    async def rotate_when_due(self) -> None:
        """Publish the current file if it is older than the age limit (called periodically)."""
        await asyncio.to_thread(self._rotate_if_due)

    async def close(self) -> None:
        """Wait for pending appends, then publish the current file."""
        while self._flushing or self._pending:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(self._publish)

    # --- the file side (one thread at a time) -------------------------------------------
    def _open(self) -> None:
        self._count += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._part = self.folder / f"{PART_PREFIX}{stamp}-{os.getpid()}-{self._count}{PART_SUFFIX}"
        self._fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_folder(self.folder)  # the new name itself survives a crash
        self._opened_at = time.monotonic()
        self._size = 0

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._fd is None:
                self._open()
            view = memoryview(data)
            try:
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                os.fsync(self._fd)
            except OSError:
                # Disk full or failing: cut what part of the batch got in, so the next batch
                # does not continue a broken line; these requests are answered with an error.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise
            self._size += len(data)
            if self._size >= self.max_bytes:
                self._publish_locked()

    def _rotate_if_due(self) -> None:
        with self._lock:
            if self._fd is not None and time.monotonic() - self._opened_at >= self.max_age_s:
                self._publish_locked()

    def _publish(self) -> None:
        with self._lock:
            self._publish_locked()

    def _publish_locked(self) -> None:
        if self._fd is None:
            return
        part, fd = self._part, self._fd
        self._fd = self._part = None
        target = published_name(part)
        os.rename(part, target)
        _fsync_folder(self.folder)
        os.close(fd)  # releases the lock only once the file is published
        self.published.append(target)
