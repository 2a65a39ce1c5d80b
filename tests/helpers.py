"""Shared test helpers: fixture payloads as envelopes, and a warehouse built from them."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from dbt_like_sql import build_model, load_models
from dbt_like_sql.session import prepare_session
from dcicd_platform.assets.config_tables import write_config_tables
from dcicd_platform.config import PlatformConfig
from dcicd_platform.ingest.envelope import envelope_line, make_envelope
from dcicd_platform.ingest.loader import FileReport, load_file

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_envelope(relative: str, delivery_id: str | None = None, **changes) -> dict:
    """The envelope a receiver would write for a published fixture payload."""
    path = FIXTURES / relative
    payload = json.loads(path.read_text())
    top = relative.split("/")[0]
    if top in ("github", "github_older"):
        source = "github"
        event_type = path.parent.name if top == "github" else "workflow_job"
    elif top == "gitlab":
        source, event_type = "gitlab", payload["object_kind"]
    else:
        source, event_type = "pagerduty", payload["event"]["event_type"]
    envelope = make_envelope(delivery_id or relative, source, event_type, payload)
    envelope.update(changes)
    return envelope


def write_envelopes(path: Path, envelopes: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(envelope_line(e) for e in envelopes))
    return path


def build_core(conn: duckdb.DuckDBPyConnection, config: PlatformConfig | None = None) -> None:
    """Build every SQL model over what raw.events holds."""
    prepare_session(conn)
    write_config_tables(conn, config or PlatformConfig())
    for model in load_models():
        build_model(conn, model)


def warehouse_with(
    tmp_path: Path, envelopes: list[dict], config: PlatformConfig | None = None
) -> tuple[duckdb.DuckDBPyConnection, FileReport]:
    """A fresh warehouse holding the envelopes, with the core models built."""
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = load_file(conn, write_envelopes(tmp_path / "landing" / "in.ndjson", envelopes))
    build_core(conn, config)
    return conn, report


def rows(conn: duckdb.DuckDBPyConnection, sql: str, *params) -> list[dict]:
    cursor = conn.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
