"""Dagster resources: the DuckDB warehouse and the platform configuration.

Every connection to the warehouse comes from one of two resources, which set its session up
(UTC whatever the host's zone, no progress bar, the payload macros:
`dbt_like_sql.session.prepare_session`). Writers (assets, checks, response jobs,
`dcicd ingest`) use `WarehouseResource` (dagster-duckdb's DuckDBResource, which retries while
another writer holds the file) and run in the `duckdb` pool. Readers that must never block a
writer, or fail on its lock (the sensor, the CLI), use `ReadOnlyWarehouseResource`, through
`read_only_connection`.

Both carry the configured `warehouse.memory_limit` (default 4GB) and spill past it to
$DCICD_HOME/tmp (`connection_settings`), so a large rebuild slows down rather than failing or
taking most of the machine's memory.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from dbt_like_sql.session import prepare_session
from dcicd_platform.config import ConfigError, PlatformConfig, Warehouse, load_config
from dcicd_platform.files import partial_path, replaced_whole
from dcicd_platform.home import Home

DUCKDB_POOL = "duckdb"


class WarehouseResource(DuckDBResource):
    """The warehouse's writer: dagster-duckdb's connection (retried while another writer holds
    the file), its session set up by `prepare_session`: UTC on any host (the reporting time
    zone's days are reckoned explicitly, never by the session)."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as conn:
            try:
                prepare_session(conn)
                yield conn
            finally:
                conn.close()  # also when the caller raised: the file lock goes with it


def configured_memory_limit(config_file: str = "") -> str:
    """`warehouse.memory_limit` of the configuration (the file given, else DCICD_CONFIG or
    ./dcicd.yaml). A configuration that cannot be read gives the default here: every run then
    stops on the configuration's own error, which names the key."""
    try:
        return load_config(Path(config_file) if config_file else None).warehouse.memory_limit
    except ConfigError:
        return Warehouse().memory_limit


def connection_settings(warehouse: Path, memory_limit: str | None = None) -> dict[str, str]:
    """DuckDB settings of every connection to the warehouse file (or its snapshot): the memory
    limit (None: the configured one) and the folder it spills to beyond that, tmp/ beside the
    warehouse ($DCICD_HOME/tmp; DuckDB creates it when it first spills)."""
    return {
        "memory_limit": memory_limit or configured_memory_limit(),
        "temp_directory": str(Home(warehouse.parent).tmp),
    }


def warehouse_resource(
    path: Path, memory_limit: str | None = None, **settings: str
) -> WarehouseResource:
    """The warehouse's writer: retries while another writer holds the file.

    Large commits (a landing file, a rebuilt table) checkpoint straight into the file instead
    of going through the write-ahead log first: half the writing. memory_limit: a DuckDB size
    (None: `warehouse.memory_limit` of the configuration).
    """
    return WarehouseResource(
        database=str(path),
        connection_config={
            "checkpoint_threshold": "1MB",
            **connection_settings(path, memory_limit),
            **settings,
        },
    )


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


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and model registry (sqlite under DCICD_HOME unless MLFLOW_TRACKING_URI)."""

    tracking_uri: str
    artifacts: str

    def client(self):
        from ml.registry import client  # mlflow is heavy: imported when a model is trained

        return client(self.tracking_uri, Path(self.artifacts))

    def rollback_champion(self, model: str, reason: str) -> tuple[str, str]:
        """Move the model's champion alias back to the version it replaced: (from, to)."""
        from ml.registry import rollback_champion

        return rollback_champion(self.client(), model, reason)


SECRET_VARIABLES = {
    "github_token": "DCICD_GITHUB_TOKEN",
    "slack_webhook_url": "DCICD_SLACK_WEBHOOK_URL",
    "pagerduty_routing_key": "DCICD_PAGERDUTY_ROUTING_KEY",
}


class SecretsResource(dg.ConfigurableResource):
    """The automation's credentials. Bound to Dagster `EnvVar`s (see `secrets_from_env`), so
    the UI shows each variable's name, never its value; an empty one means not configured."""

    github_token: str | None = None
    slack_webhook_url: str | None = None
    pagerduty_routing_key: str | None = None


def secrets_from_env() -> SecretsResource:
    """Each secret read through its `EnvVar` when the variable is set. An unset one stays
    unset: Dagster fails a resource whose `EnvVar` is missing, and every secret is optional
    (a channel without its secret is simply not used)."""
    return SecretsResource(
        **{
            field: dg.EnvVar(variable)
            for field, variable in SECRET_VARIABLES.items()
            if dg.EnvVar(variable).get_value()
        }
    )


class WarehouseBusy(RuntimeError):
    """The warehouse stayed locked by a writer for longer than the caller would wait."""


def snapshot_path(warehouse: Path) -> Path:
    """Where readers open the last published state of the warehouse: a link to one of two
    copies (`snapshot_slots`), switched in one rename when the other is published."""
    return warehouse.with_name(warehouse.stem + ".snapshot.duckdb")


def snapshot_slots(warehouse: Path) -> tuple[Path, Path]:
    """The two copies the snapshot link points between (hidden beside the warehouse)."""
    return tuple(warehouse.with_name(f".{warehouse.stem}.snapshot-{s}.duckdb") for s in "ab")


_CHUNK = 4 << 20  # bytes compared at a time: DuckDB's blocks are 256 kB


def _lock_unused(handle) -> bool:
    """Take an exclusive lock on the open file, for as long as it stays open, if no DuckDB
    connection has it open (DuckDB locks its files with fcntl; an open file description lock
    conflicts with those even in this process). False when one has, or the system has no such
    locks: the caller then must not write the file in place."""
    import errno
    import fcntl
    import struct

    command = getattr(fcntl, "F_OFD_SETLK", None)
    if command is None:
        return False
    # struct flock: l_type, l_whence, l_start, l_len (0: the whole file), l_pid (0 for OFD)
    request = struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0)
    try:
        fcntl.fcntl(handle.fileno(), command, request)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True


def _rewrite_changed(source: Path, target: Path) -> int | None:
    """Make target a byte copy of source by writing only the chunks that differ; the bytes
    written, or None when target is missing or open in a reader (then it must be replaced)."""
    import os

    try:
        handle = open(target, "r+b")  # noqa: SIM115 (held open: the lock lives with it)
    except FileNotFoundError:
        return None
    with handle, open(source, "rb") as src:
        if not _lock_unused(handle):
            return None
        written, offset = 0, 0
        while chunk := src.read(_CHUNK):
            if handle.read(len(chunk)) != chunk:
                handle.seek(offset)
                handle.write(chunk)
                written += len(chunk)
            offset += len(chunk)
            handle.seek(offset)
        handle.truncate(offset)
        handle.flush()
        os.fsync(handle.fileno())
    return written


def publish_snapshot(conn: duckdb.DuckDBPyConnection, warehouse: Path) -> tuple[Path, int]:
    """Publish the warehouse, checkpointed, as its snapshot for readers; (path, bytes written).

    Called while holding the writer's connection, so what is published is one consistent
    state. Of the two copies, the one readers are not pointed at is brought up to date by
    writing only the chunks that changed since it was published (a refresh rewrites a small
    part of the file), then the link readers open is switched to it in one rename. A reader
    still holding that copy open (from two publications ago) keeps it: the copy is then written
    whole under a new name and renamed onto it, as every publication did before.
    """
    import os

    conn.execute("CHECKPOINT")
    link = snapshot_path(warehouse)
    slots = snapshot_slots(warehouse)
    current = link.parent / os.readlink(link) if link.is_symlink() else None
    spare = slots[1] if current == slots[0] else slots[0]
    written = _rewrite_changed(warehouse, spare)
    if written is None:
        with replaced_whole(spare) as partial:
            shutil.copyfile(warehouse, partial)
        written = spare.stat().st_size
    partial = partial_path(link)
    partial.unlink(missing_ok=True)
    partial.symlink_to(spare.name)
    partial.replace(link)
    return link, written


def _is_lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


class ReadOnlyWarehouseResource(DuckDBResource):
    """The warehouse's reader: a read-only connection that never fails on a writer's lock, its
    session set up by `prepare_session` like the writer's.

    Tries the live warehouse for live_wait_s; while a writer still holds it, answers from the
    snapshot the last refresh published, or, with none yet, keeps waiting up to wait_s. The
    connection's `dcicd_source` attribute says which ("live" or "snapshot").
    """

    wait_s: float = 60.0
    live_wait_s: float = 2.0

    def _connect(self, path: Path) -> duckdb.DuckDBPyConnection:
        conn = duckdb.connect(str(path), read_only=True, config=self.connection_config)
        try:
            prepare_session(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def get_connection(self) -> Iterator[_Tagged]:
        path = Path(self.database)
        if not path.exists():
            raise FileNotFoundError(
                f"no warehouse at {path}: run `dcicd ingest` or `dcicd demo` first"
            )
        started = time.monotonic()
        delay = 0.05
        snapshot = snapshot_path(path)
        while True:
            try:
                conn, source = self._connect(path), "live"
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise
                waited = time.monotonic() - started
                if waited >= self.live_wait_s and snapshot.exists():
                    try:
                        conn, source = self._connect(snapshot), "snapshot"
                        break
                    except duckdb.IOException as busy:  # the copy is being rewritten
                        if not _is_lock_error(busy):
                            raise
                if waited >= self.wait_s:
                    raise WarehouseBusy(
                        f"the warehouse {path} stayed locked by a writer for {self.wait_s:.0f} s"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        try:
            yield _Tagged(conn, source)
        finally:
            conn.close()


def read_only_connection(
    path: Path, wait_s: float = 60.0, live_wait_s: float = 2.0, memory_limit: str | None = None
) -> AbstractContextManager[_Tagged]:
    """A read-only connection to the warehouse at path (`ReadOnlyWarehouseResource`): for
    readers outside a Dagster run, such as the CLI and the anomaly sensor. memory_limit: as for
    `warehouse_resource`."""
    return ReadOnlyWarehouseResource(
        database=str(path),
        wait_s=wait_s,
        live_wait_s=live_wait_s,
        connection_config=connection_settings(path, memory_limit),
    ).get_connection()


@contextmanager
def scratch_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection in the warehouse's session (UTC, the macros): for reading what
    the SQL layer defines, such as the DORA tier bands, without a warehouse."""
    conn = duckdb.connect(":memory:")
    try:
        prepare_session(conn)
        yield conn
    finally:
        conn.close()


class _Tagged:
    """A connection that also says where it reads from."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, source: str) -> None:
        self._conn = conn
        self.dcicd_source = source

    def __getattr__(self, name: str):
        return getattr(self._conn, name)
