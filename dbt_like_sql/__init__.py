"""SQL models: each `<schema>/<table>.sql` file is one SELECT that becomes the table schema.table.

Dependencies are the tables a statement reads, parsed with sqlglot (never listed by hand), so
the lineage users see is the SQL's own (remembered in `lineage.json`, see lineage.py).
Nothing here knows about Dagster.

A model may start with header comments carrying settings, e.g. `-- description: ...`. A model
over raw.events whose rows are the latest state of something may say

    -- materialization: incremental
    -- unique_key: run_key
    -- latest_by: (status = 'completed') DESC, last_received_at DESC

and is then refreshed from the loads of raw.events it has not seen yet: their rows are merged
by key into the table, the better by `latest_by` winning, exactly as a full rebuild would pick.
Such a model reads raw.events (and config) only: what a row takes from another table (a job's
workflow from its run) belongs in a by_key model over it, which recomputes the row when that
table's row changes, whatever order the events arrive in.
A model over other models whose rows each depend only on upstream rows of the same key may say

    -- materialization: by_key
    -- unique_key: repo, workflow, day
    -- key core.pipeline_runs: repo, workflow, started_at::DATE

and then recomputes only the keys its upstreams' changes touched (see incremental.py).
A changed model, or a change in the config tables it reads, rebuilds it whole.

The macros the models use live in `macros/`, and every build sets its connection up
(`session.py`), so the layer builds on its own. A model's data-quality rules live beside its
SQL, in `<schema>/<table>.yaml` (read by the application's checks).

A table models read that no model builds (written by the application) is a source:
`sources/<schema>.<table>.sql` holds its `CREATE ... IF NOT EXISTS`, run before a model
reads it, so a fresh warehouse builds.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from graphlib import TopologicalSorter
from pathlib import Path

from dbt_like_sql.incremental import KeyMap
from dbt_like_sql.lineage import tables_read

MODELS_ROOT = Path(__file__).parent
SCHEMAS = ("core", "marts", "ops")
_SETTING = re.compile(r"^--\s*([a-z_]+):\s*(.*)$")
_KEY_MAP = re.compile(r"^--\s*key\s+([a-z_]+\.[a-z_]+):\s*(.*)$")


@dataclass(frozen=True)
class SqlModel:
    """One model: the table it builds, its SELECT, and the tables that SELECT reads."""

    schema: str
    name: str
    sql: str
    path: Path
    settings: dict[str, str] = field(default_factory=dict)
    reads: tuple[tuple[str, str], ...] = ()
    key_maps: tuple[KeyMap, ...] = ()
    readers: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def description(self) -> str:
        return self.settings.get("description", f"The {self.table} table.")


def _settings(sql: str) -> dict[str, str]:
    settings = {}
    for line in sql.splitlines():
        line = line.strip()
        if not line.startswith("--"):
            break
        match = _SETTING.match(line)
        if match:
            settings[match.group(1)] = match.group(2).strip()
    return settings


def _key_maps(path: Path, sql: str, reads: tuple[tuple[str, str], ...]) -> tuple[KeyMap, ...]:
    """The `-- key <table>: ...` lines of a by_key model, checked against what it reads."""
    maps = []
    for line in sql.splitlines():
        if not line.strip().startswith("--"):
            break
        match = _KEY_MAP.match(line.strip())
        if match:
            maps.append(KeyMap.parse(match.group(1), match.group(2).strip()))
    read = {f"{s}.{n}" for s, n in reads if s != "config"}
    mapped = {m.upstream for m in maps}
    direct = {m.upstream for m in maps if m.expression is not None}
    problems = [f"reads {t} but has no '-- key {t}:' line" for t in sorted(read - mapped)]
    problems += [f"has a key line for {t}, which it does not read" for t in sorted(mapped - read)]
    problems += [
        f"key {m.upstream} goes through {m.through}, which has no key expression"
        for m in maps
        if m.through is not None and m.through not in direct
    ]
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return tuple(maps)


def load_model(path: Path) -> SqlModel:
    sql = path.read_text(encoding="utf-8")
    try:
        reads = tables_read(sql)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    settings = _settings(sql)
    maps = _key_maps(path, sql, reads) if settings.get("materialization") == "by_key" else ()
    if settings.get("materialization") == "by_key" and "unique_key" not in settings:
        raise ValueError(f"{path}: a by_key model needs a '-- unique_key:' line")
    if settings.get("materialization") == "incremental":
        # Its rows are merged from new events only: a row that also read another table would
        # keep what that table said when the row's events arrived, whatever it says later.
        others = sorted(
            f"{s}.{n}" for s, n in reads if s != "config" and (s, n) != ("raw", "events")
        )
        if others:
            raise ValueError(
                f"{path}: an incremental model reads only raw.events (and config); it reads"
                f" {', '.join(others)}: join those in a by_key model over it instead"
            )
    return SqlModel(path.parent.name, path.stem, sql, path, settings, reads, maps)


def load_models(root: Path = MODELS_ROOT) -> list[SqlModel]:
    """Every model under root, in an order where each comes after the models it reads.

    Parsed once per process (the asset graph and the checks both ask at every code load).
    """
    return list(_models_under(root))


@functools.cache
def _models_under(root: Path) -> tuple[SqlModel, ...]:
    models = {
        m.table: m
        for schema in SCHEMAS
        for m in map(load_model, sorted((root / schema).glob("*.sql")))
    }
    graph = {
        table: {f"{s}.{n}" for s, n in m.reads if f"{s}.{n}" in models}
        for table, m in models.items()
    }
    readers: dict[str, list[str]] = {}
    for table, m in models.items():
        for key_map in m.key_maps:
            readers.setdefault(key_map.upstream, []).append(table)
    models = {t: replace(m, readers=tuple(sorted(readers.get(t, [])))) for t, m in models.items()}
    return tuple(models[table] for table in TopologicalSorter(graph).static_order())


def source_ddl(schema: str, name: str) -> str | None:
    """The DDL of a source table (read by models, written by the application), if any."""
    path = MODELS_ROOT / "sources" / f"{schema}.{name}.sql"
    return path.read_text(encoding="utf-8") if path.exists() else None


def build_model(conn, model: SqlModel) -> int:
    """Refresh the model's table atomically (whole, or incrementally); returns the row count."""
    from dbt_like_sql import incremental
    from dbt_like_sql.session import prepare_session

    prepare_session(conn)  # UTC and the macros: the SQL layer needs nothing run before it
    for schema, name in model.reads:
        ddl = source_ddl(schema, name)
        if ddl:
            conn.execute(ddl)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {model.schema}")
    materialization = model.settings.get("materialization", "table")
    if materialization == "incremental":
        incremental.latest_state(conn, model)
    elif materialization == "by_key":
        incremental.by_key(conn, model)
    else:
        incremental.build_full(
            conn, model, f"CREATE OR REPLACE TABLE {model.table} AS\n{model.sql}"
        )
    return conn.execute(f"SELECT count(*) FROM {model.table}").fetchone()[0]
