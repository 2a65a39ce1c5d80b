"""The landing sensor: one ingestion run per new file in landing/, keyed by its content hash.

It looks every 10 seconds (a listing of landing/ and a stat per file; a file is hashed only
when new or changed): a bad deployment's health samples wait at most that long to be loaded,
then the watch starts on them (watch_trigger.py).

It starts from the ingest ledger (raw.files): a file whose bytes are already there, loaded by
`dcicd ingest`, `dcicd demo` or an earlier run, starts no run. So the first `make dev` after
`make demo` starts none for the demo's files.
"""

import json
from pathlib import Path

import dagster as dg

from dcicd_platform.automation.jobs import ingest_job
from dcicd_platform.home import Home
from dcicd_platform.ingest.loader import UnreadableFile, content_hash, discover

# The sensor must answer within Dagster's minute: a writer holding the warehouse longer (with
# no snapshot published yet) only postpones this look to the next.
LEDGER_WAIT_S = 20.0


class LedgerUnavailable(Exception):
    """The ledger could not be read now (the warehouse locked, or unreadable)."""


def loaded_digests(warehouse: Path, digests: list[str]) -> set[str]:
    """Which of these content hashes the ingest ledger (raw.files) already holds; none when
    there is no warehouse or no ledger yet. Read-only: while a refresh writes, the last
    published snapshot answers (a file loaded since then runs, and is found loaded)."""
    import duckdb

    from dcicd_platform.resources import WarehouseBusy, read_only_connection

    if not digests or not warehouse.exists():
        return set()
    try:
        with read_only_connection(warehouse, wait_s=LEDGER_WAIT_S) as conn:
            found = conn.execute(
                "SELECT count(*) FROM duckdb_tables()"
                " WHERE schema_name = 'raw' AND table_name = 'files'"
            ).fetchone()[0]
            if not found:
                return set()
            rows = conn.execute(
                "SELECT content_sha256 FROM raw.files"
                " WHERE list_contains($digests, content_sha256)",
                {"digests": digests},
            ).fetchall()
    except (WarehouseBusy, duckdb.Error) as exc:
        raise LedgerUnavailable(str(exc)) from exc
    return {row[0] for row in rows}


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@dg.sensor(
    name="landing_files",
    job=ingest_job,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts one run per new landing file, the run key its SHA-256; files the "
    "ingest ledger (raw.files) already holds start none.",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    home = Home.from_env()
    landing = home.landing
    if not landing.exists():
        return dg.SkipReason(f"no landing folder at {landing}")
    # The cursor remembers each file's size and mtime, so unchanged files are not hashed again.
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current: dict[str, str] = {}
    new: list[tuple[str, Path, str]] = []
    for path in discover([landing]):
        name = str(path.relative_to(landing))
        if path.relative_to(landing).parts[0] == "import":
            continue  # the history import loads what it lands itself, as one run
        try:
            fingerprint = _fingerprint(path)
            current[name] = fingerprint
            if seen.get(name) == fingerprint:
                continue
            digest = content_hash(path)
        except (OSError, UnreadableFile) as exc:
            context.log.warning(f"cannot read {name}: {exc}")
            current.pop(name, None)
            continue
        new.append((name, path, digest))
    try:
        loaded = loaded_digests(home.warehouse, [digest for _, _, digest in new])
    except LedgerUnavailable as exc:
        # The cursor stays: the next look asks the ledger again.
        return dg.SkipReason(f"the ingest ledger cannot be read now ({exc})")
    requests = [
        dg.RunRequest(
            run_key=digest,
            run_config={"ops": {"raw__events": {"config": {"files": [str(path)]}}}},
            tags={"dcicd/landing_file": name},
        )
        for name, path, digest in new
        if digest not in loaded
    ]
    if len(requests) < len(new):
        context.log.info(f"{len(new) - len(requests)} new file(s) already in the ingest ledger")
    context.update_cursor(json.dumps(current, sort_keys=True))
    return requests or dg.SkipReason("no new landing files")
