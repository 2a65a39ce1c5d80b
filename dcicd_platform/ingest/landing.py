"""Files into landing/, and the names they are recorded under there: the CLI's `ingest` lands
what it is given, the raw/events asset records each file by its landing name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dcicd_platform.files import replaced_whole


def landing_name(path: Path, landing: Path) -> str:
    """The name a file is recorded under: relative to landing/ when it lies inside it."""
    try:
        return str(path.resolve().relative_to(landing.resolve()))
    except ValueError:
        return str(path)


def land(path: Path, landing: Path) -> Path:
    """Put a file into landing/imported/ (a hard link when possible); files inside stay put.

    Landing the same file again finds it there (same inode, or same size and mtime).
    """
    try:
        path.resolve().relative_to(landing.resolve())
        return path
    except ValueError:
        pass
    source = path.stat()
    folder = landing / "imported"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(10_000):
        target = folder / (path.name if n == 0 else f"{n}-{path.name}")
        if not target.exists():
            break
        landed = target.stat()
        if path.samefile(target) or (landed.st_size, landed.st_mtime_ns) == (
            source.st_size,
            source.st_mtime_ns,
        ):
            return target
    with replaced_whole(target) as partial:
        try:
            os.link(path, partial)
        except OSError:
            shutil.copy2(path, partial)
    return target
