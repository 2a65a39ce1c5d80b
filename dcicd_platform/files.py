"""Files that appear whole: written beside their place under a hidden partial name, then
renamed onto it, so a reader (the landing sensor, a browser, a snapshot reader) never opens
half of one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def partial_path(target: Path) -> Path:
    """Where target is written before it is renamed: hidden, and ending .partial, the names
    the landing folder's readers pass over."""
    return target.with_name("." + target.name + ".partial")


@contextmanager
def replaced_whole(target: Path) -> Iterator[Path]:
    """Yield the partial path to write; when the block ends, rename it onto target in one step
    (on an error, remove it instead and leave target as it was)."""
    partial = partial_path(target)
    try:
        yield partial
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
