"""Asking the gate: read the facts (live warehouse, else its snapshot), decide, audit.

Shared by `dcicd gate`, `POST /gate` and the deployment protection rule. `dcicd gate` reads the
warehouse on a read-only connection opened for the question and closed at once, so it never
keeps a refresh from writing; while a refresh holds the file, it answers from the snapshot the
last refresh published (the verdict says so). The receiver answers from its index instead
(cache.py), passed in as `facts_from`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dcicd_platform.config import PlatformConfig, config_path, load_config
from dcicd_platform.duckdb_files import connect
from dcicd_platform.gate import audit
from dcicd_platform.gate.facts import read_facts
from dcicd_platform.gate.rules import Facts, Verdict, decide

LIVE_WAIT_S = 0.2  # a flush or a gate in another process holds the file this long at most

_config_cache: dict[tuple, PlatformConfig] = {}


def current_config() -> PlatformConfig:
    """The configuration, read again only when its file changes (a gate costs milliseconds;
    parsing YAML each time would be most of them)."""
    path = config_path()
    key = (str(path), path.stat().st_mtime_ns if path and path.exists() else None)
    if key not in _config_cache:
        _config_cache.clear()
        _config_cache[key] = load_config(path)
    return _config_cache[key]


def snapshot_of(warehouse: Path) -> Path:
    """The snapshot a refresh publishes (resources.snapshot_path, without importing Dagster)."""
    return warehouse.with_name(warehouse.stem + ".snapshot.duckdb")


def _open(warehouse: Path) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A read-only connection: the live file, else (a writer holds it) the snapshot."""
    if not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse}: run `dcicd demo` or a refresh first")
    started, delay = time.monotonic(), 0.01
    settings = {"threads": 1, "memory_limit": "512MB"}
    while True:
        try:
            return connect(warehouse, read_only=True, config=settings), "live"
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            snapshot = snapshot_of(warehouse)
            if snapshot.exists():
                return connect(snapshot, read_only=True, config=settings), "snapshot"
            if time.monotonic() - started > LIVE_WAIT_S:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def read(warehouse: Path, service: str, sha: str, environment: str, now: datetime, config) -> Facts:
    """The facts, or facts that say why the warehouse could not be read."""
    try:
        with audit.WAREHOUSE_TURN:
            conn, source = _open(warehouse)
            try:
                conn.execute("SET TimeZone = 'UTC'")
                return read_facts(conn, service, sha, environment, now, config.gate, source)
            finally:
                conn.close()
    except (FileNotFoundError, duckdb.Error) as exc:
        return Facts(service, sha, environment, now, unreadable=f"cannot read the warehouse: {exc}")


def ask(
    home_root: Path,
    service: str,
    sha: str,
    environment: str = "production",
    asked_by: str = "cli",
    config: PlatformConfig | None = None,
    now: datetime | None = None,
    facts_from: Callable[..., Facts] | None = None,
) -> Verdict:
    """The verdict on promoting service at sha to environment, recorded in the journal.
    facts_from(service, sha, environment, now, gate): where the facts come from (the
    receiver's index); by default a read-only connection to the warehouse."""
    started = time.perf_counter()
    config = config or current_config()
    service = service_of(service, config)
    now = now or datetime.now(UTC)
    if config.gate.mode == "off":
        facts = Facts(service, sha, environment, now)
    elif facts_from is not None:
        facts = facts_from(service, sha, environment, now, config.gate)
    else:
        facts = read(home_root / "warehouse.duckdb", service, sha, environment, now, config)
    verdict = replace(decide(facts, config.gate), gate_id=audit.new_gate_id())
    audit.record(home_root, verdict, asked_by, (time.perf_counter() - started) * 1000)
    return verdict


def flush_soon(home_root: Path, wait_s: float = 5.0) -> int | None:
    """Write the journal into ops.gates, waiting up to wait_s for a writer to finish; None
    when it still holds the warehouse (the verdicts stay in the journal)."""
    deadline = time.monotonic() + wait_s
    while True:
        written = audit.flush(home_root, home_root / "warehouse.duckdb")
        if written is not None or time.monotonic() >= deadline:
            return written
        time.sleep(0.2)


MARK = {"pass": "ok  ", "fail": "FAIL", "no_data": "n/a ", "not_applied": "off "}


def render_text(verdict: Verdict) -> str:
    """The verdict for a terminal or a CI log: the answer first, then every reason."""
    head = f"{verdict.service} @ {verdict.sha[:12]} -> {verdict.environment}: {verdict.verdict}"
    if verdict.mode == "shadow":
        head += f" (shadow mode; enforce would say {verdict.enforced})"
    elif verdict.mode != "enforce":
        head += f" (mode {verdict.mode})"
    if verdict.source == "snapshot":
        head += " [read from the last published snapshot: a refresh is writing]"
    lines = [head]
    if verdict.why_undecided:
        lines.append(f"  cannot decide: {verdict.why_undecided}")
    width = max((len(r.rule) for r in verdict.reasons), default=0)
    for reason in verdict.reasons:
        lines.append(
            f"  {MARK.get(reason.status, reason.status)} {reason.rule:{width}}  {reason.detail}"
        )
    return "\n".join(lines)


def service_of(name: str, config: PlatformConfig) -> str:
    """The service a name stands for: a configured service's own name, else the configured
    service listing it as a repository (the first, in a repository services share), else the
    name itself (a service is its repository's full name by default). A CI job can so name
    its repository (`github.repository`, `CI_PROJECT_PATH`)."""
    if any(service.name == name for service in config.services):
        return name
    for service in config.services:
        if name in service.repositories:
            return service.name
    return name
