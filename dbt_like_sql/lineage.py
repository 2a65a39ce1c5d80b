"""The tables a statement reads, parsed with sqlglot and remembered in `lineage.json`.

Every process that loads the asset graph (each Dagster run, each CLI command) needs the tables
each model reads; parsing some thirty statements with sqlglot costs about half a second, so the
answers for the SQL shipped with the project are kept in `lineage.json`, keyed by a hash of the
statement's text. A statement whose text is not there (a model just edited) is parsed as
before: the file only ever saves time, it never answers for SQL it has not seen.
`make lineage` rewrites it; a test fails while it is out of date.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

LINEAGE_FILE = Path(__file__).parent / "lineage.json"

Reads = tuple[tuple[str, str], ...]


def digest(sql: str) -> str:
    """The key of a statement in the lineage file: sha256 of its text."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


@functools.cache
def _known(path: Path = LINEAGE_FILE) -> dict[str, Reads]:
    if not path.exists():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))
    return {key: tuple(tuple(t) for t in reads) for key, reads in entries.items()}


def parse_tables_read(sql: str) -> Reads:
    """Schema-qualified tables a statement reads (CTE names and table functions excluded).

    Raises ValueError when the statement does not parse as DuckDB SQL.
    """
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise ValueError(f"the SQL does not parse: {exc}") from exc
    # CTEs and table functions have no schema; every stored table is read as schema.table.
    return tuple(sorted({(t.db, t.name) for t in tree.find_all(exp.Table) if t.db}))


def tables_read(sql: str) -> Reads:
    """Schema-qualified tables a statement reads, as (schema, table) pairs, sorted.

    From the lineage file when it knows this exact text, else parsed. Raises ValueError when
    the statement does not parse.
    """
    known = _known().get(digest(sql))
    return known if known is not None else parse_tables_read(sql)


def write(statements: Iterable[str], path: Path = LINEAGE_FILE) -> int:
    """Parse every statement and write the lineage file; returns how many it holds."""
    entries = {digest(sql): [list(t) for t in parse_tables_read(sql)] for sql in statements}
    path.write_text(json.dumps(dict(sorted(entries.items())), indent=1) + "\n", encoding="utf-8")
    _known.cache_clear()
    return len(entries)
