"""The session every warehouse connection works in, so the SQL layer builds on its own.

UTC whatever the host's zone (a cast of a time to a DATE is its UTC day; the reporting time
zone's days, CONTRACTS.md section 4, are reckoned explicitly with macros/reporting_calendar.sql,
never by the session's zone), no progress bar (callers report progress themselves), and on a
writable connection the macros of `macros/*.sql`, which the models and the loader use and
analysts may query with.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

MACROS_ROOT = Path(__file__).parent / "macros"


def _macro_files() -> list[str]:
    return [path.read_text(encoding="utf-8") for path in sorted(MACROS_ROOT.glob("*.sql"))]


def create_macros(conn) -> None:
    """Create (or replace) every macro of macros/*.sql in the connection's database, unless
    the database already holds these very macros: `dcicd_macros_version()` names the text they
    were made from, written last, so a creation cut short is made again. Creating them costs a
    commit per macro, which every step of a refresh would otherwise pay. Call it outside a
    transaction: the version is looked up by calling it, which fails in a new database."""
    files = _macro_files()
    version = hashlib.sha256("\n".join(files).encode()).hexdigest()
    try:
        if conn.execute("SELECT dcicd_macros_version()").fetchone()[0] == version:
            return
    except duckdb.CatalogException:
        pass
    for text in files:
        conn.execute(text)
    conn.execute(f"CREATE OR REPLACE MACRO dcicd_macros_version() AS '{version}'")


def prepare_session(conn) -> None:
    """Set a DuckDB connection up: UTC, no progress bar, the macros (a read-only connection
    finds them in the file its writers made)."""
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_progress_bar = false")
    if conn.execute("SELECT current_setting('access_mode')").fetchone()[0] != "read_only":
        create_macros(conn)
