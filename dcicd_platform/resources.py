"""Dagster resources: the DuckDB warehouse and the platform configuration.

Every asset that writes the warehouse gets its connection from `warehouse_resource` (dagster-duckdb
DuckDBResource, which retries while another writer holds the file) and runs in the `duckdb` pool.
Readers that must never block a writer, or fail on its lock, use `read_only_connection`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from dcicd_platform.config import PlatformConfig, load_config
from dcicd_platform.home import Home

DUCKDB_POOL = "duckdb"


def warehouse_resource(path: Path) -> DuckDBResource:
    return DuckDBResource(database=str(path))


class HomeResource(dg.ConfigurableResource):
    """DCICD_HOME: where landing files arrive and reports are written."""

    root: str

    @property
    def home(self) -> Home:
        return Home(Path(self.root))


class SettingsResource(dg.ConfigurableResource):
    """The platform configuration file (empty: DCICD_CONFIG, ./dcicd.yaml, or the defaults)."""

    config_file: str = ""

    def load(self) -> PlatformConfig:
        return load_config(Path(self.config_file) if self.config_file else None)


class WarehouseBusy(RuntimeError):
    """The warehouse stayed locked by a writer for longer than the caller would wait."""


@contextmanager
def read_only_connection(path: Path, wait_s: float = 60.0):
    """A read-only connection, retried while a writer holds the file lock (up to wait_s)."""
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `dcicd ingest` or `dcicd demo` first")
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                if "lock" in str(exc).lower():
                    raise WarehouseBusy(
                        f"the warehouse {path} stayed locked by a writer for {wait_s:.0f} s"
                    ) from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET enable_progress_bar = false")
        yield conn
    finally:
        conn.close()
