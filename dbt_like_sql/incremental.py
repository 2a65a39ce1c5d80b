"""The two incremental materializations: latest state from new raw loads, and recompute by key.

`latest_state`: a model over raw.events whose rows are the latest state of something (a run, a
job) gives one row per event; a full build keeps each key's first row by `latest_by`, and a
refresh reads only the loads it has not seen and merges their rows by `unique_key` the same
way, so both pick exactly the same row.

`by_key`: a model whose every output row depends only on upstream rows that map to the same
key (a job's price; a day's totals) recomputes only the keys touched by its upstreams' changes
since its last build. Each upstream says how its rows map to the model's key:

    -- key core.pipeline_runs: repo, workflow, started_at::DATE
    -- key core.pipeline_jobs: through core.pipeline_runs on run_key

the second meaning a job belongs to the key of its run. Each upstream read is then narrowed to
the rows of the touched keys, so the cost follows the change, not the history.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from dbt_like_sql import changelog
from dbt_like_sql.catalog import table_exists


@dataclass(frozen=True)
class KeyMap:
    """How one upstream's rows map to the model's key: an expression list, or through another."""

    upstream: str
    expression: str | None = None
    through: str | None = None
    on: str | None = None

    @classmethod
    def parse(cls, upstream: str, text: str) -> KeyMap:
        words = text.split()
        if words and words[0] == "through":
            if len(words) != 4 or words[2] != "on":
                raise ValueError(
                    f"key {upstream}: expected 'through <table> on <column>': {text!r}"
                )
            return cls(upstream, through=words[1], on=words[3])
        return cls(upstream, expression=text)


def in_transaction(conn, statements: list[str], params: dict | None = None) -> None:
    conn.execute("BEGIN TRANSACTION")
    try:
        for statement in statements:
            if callable(statement):
                statement()
                continue
            conn.execute(
                statement, {k: v for k, v in (params or {}).items() if f"${k}" in statement}
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def version(conn, model) -> str:
    """The model's SQL and the content of the config tables it reads: a change rebuilds it."""
    parts = [model.sql]
    for schema, name in model.reads:
        if schema == "config":
            parts.append(
                conn.execute(
                    "SELECT md5(coalesce(string_agg(CAST(t AS VARCHAR), '|'"
                    f" ORDER BY CAST(t AS VARCHAR)), '')) FROM {schema}.{name} t"
                ).fetchone()[0]
            )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _needs_rebuild(conn, model) -> tuple[bool, str]:
    """Whether the model must be built whole (new, its SQL or config changed), and its version."""
    current = version(conn, model)
    known = conn.execute(
        "SELECT version FROM meta.model_versions WHERE model = ?", [model.table]
    ).fetchone()
    exists = table_exists(conn, model.table)
    return (not exists or known is None or known[0] != current), current


def replace_tables(sql: str, replacements: dict[tuple[str, str], str]) -> str:
    """The statement with each read of schema.table swapped for a subquery, keeping its alias."""
    import sqlglot  # only builds rewrite SQL: loading the models needs no parser
    from sqlglot import exp

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and (node.db, node.name) in replacements:
            alias = node.alias or node.name
            return sqlglot.parse_one(
                f"({replacements[(node.db, node.name)]}) AS {alias}", read="duckdb"
            )
        return node

    return sqlglot.parse_one(sql, read="duckdb").transform(swap).sql(dialect="duckdb")


_ALL_LOADS = (
    "CREATE OR REPLACE TEMP TABLE dcicd_new_loads AS SELECT DISTINCT load_id FROM raw.events"
)
_STATE_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.model_versions (model VARCHAR PRIMARY KEY, version VARCHAR);
CREATE TABLE IF NOT EXISTS meta.model_loads (model VARCHAR, load_id VARCHAR);
"""


@functools.cache
def only_new_events(sql: str) -> str:
    """The model's SELECT over the loads of raw.events listed in the temp table dcicd_new_loads
    (rewritten once per process: parsing a model's SQL costs a refresh step tenths of a second)."""
    return replace_tables(
        sql,
        {
            ("raw", "events"): "SELECT * FROM raw.events"
            " WHERE load_id IN (SELECT load_id FROM dcicd_new_loads)"
        },
    )


class ChangeLog:
    """The change log of one incremental build, kept only when other models read the table."""

    def __init__(self, conn, model) -> None:
        self.conn, self.model, self.seq = conn, model, None

    def start(self) -> None:
        if self.model.readers:
            changelog.prune(self.conn, self.model.table, self.model.readers)
            self.seq = changelog.start_build(self.conn, self.model.table, full=False)

    def record(self, rows_sql: str) -> None:
        if self.model.readers:
            changelog.record(self.conn, self.model.table, self.seq, rows_sql)


def build_full(
    conn, model, statement: str, extra: list | None = None, params: dict | None = None
) -> None:
    """Build the table whole; readers that read it by key are told to rebuild."""
    changelog.ensure_meta(conn)

    def mark() -> None:
        if model.readers:
            changelog.start_build(conn, model.table, full=True)
        if model.key_maps:
            changelog.advance(conn, model.table, [k.upstream for k in model.key_maps])

    in_transaction(conn, [statement, *(extra or []), mark], params)


def latest_rows(model) -> str:
    """The model's rows, one per key: the first by `latest_by` (the model's SQL gives one row per
    event, so the ordering is written once, in its header)."""
    key, order = model.settings["unique_key"], model.settings["latest_by"]
    return (
        f"SELECT * FROM (\n{model.sql}\n)\n"
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1"
    )


def key_text(model) -> str:
    """The model's unique key as one VARCHAR (how `meta.pruned_keys` names a row)."""
    return f"CAST({_row(model.settings['unique_key'])} AS VARCHAR)"


def _has_pruned_keys(conn, model) -> bool:
    """Whether retention dropped payloads some of this model's rows were made from."""
    return table_exists(conn, "meta.pruned_keys") and bool(
        conn.execute(
            "SELECT count(*) FROM meta.pruned_keys WHERE model = ?", [model.table]
        ).fetchone()[0]
    )


def _rebuild_keeping_pruned(conn, model) -> list:
    """A full rebuild after retention (dbt_like_sql/retention.py): the keys whose payloads are
    gone keep their rows as last built (the columns the table still has); every other key is
    recomputed from the payloads still held."""
    table = model.table
    pruned = f"{key_text(model)} IN (SELECT key FROM meta.pruned_keys WHERE model = $model)"
    held = replace_tables(
        latest_rows(model),
        {("raw", "events"): "SELECT * FROM raw.events WHERE payload IS NOT NULL"},
    )

    def keep() -> None:
        kept = {c for (c, *_) in conn.execute("DESCRIBE dcicd_kept").fetchall()}
        columns = [c for (c, *_) in conn.execute(f"DESCRIBE {table}").fetchall() if c in kept]
        names = ", ".join(f'"{c}"' for c in columns)
        conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM dcicd_kept")

    return [
        f"CREATE OR REPLACE TEMP TABLE dcicd_kept AS SELECT * FROM {table} WHERE {pruned}",
        f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM ({held}) WHERE NOT ({pruned})",
        keep,
    ]


def latest_state(conn, model) -> None:
    table, key, order = model.table, model.settings["unique_key"], model.settings["latest_by"]
    conn.execute(_STATE_DDL)
    rebuild, current = _needs_rebuild(conn, model)
    params = {"model": table, "version": current}
    record = [
        "INSERT INTO meta.model_loads SELECT $model, load_id FROM dcicd_new_loads",
        "INSERT OR REPLACE INTO meta.model_versions VALUES ($model, $version)",
    ]
    if rebuild:
        steps = [f"CREATE OR REPLACE TABLE {table} AS\n{latest_rows(model)}"]
        if table_exists(conn, table) and _has_pruned_keys(conn, model):
            steps = _rebuild_keeping_pruned(conn, model)
        build_full(
            conn,
            model,
            steps[0],
            [*steps[1:], "DELETE FROM meta.model_loads WHERE model = $model", _ALL_LOADS, *record],
            params,
        )
        return
    changelog.ensure_meta(conn)
    log = ChangeLog(conn, model)

    in_transaction(
        conn,
        [
            _ALL_LOADS + " EXCEPT SELECT load_id FROM meta.model_loads WHERE model = $model",
            f"CREATE OR REPLACE TEMP TABLE dcicd_delta AS\n{only_new_events(model.sql)}",
            # The rows the new events touch, as they stand: merged with the delta, and logged.
            "CREATE OR REPLACE TEMP TABLE dcicd_old AS\n"
            + _rows_where(table, f"{key} IN (SELECT {key} FROM dcicd_delta)"),
            f"""CREATE OR REPLACE TEMP TABLE dcicd_merged AS
            SELECT * FROM (FROM dcicd_old UNION ALL BY NAME SELECT * FROM dcicd_delta)
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1""",
            log.start,
            lambda: log.record("SELECT * FROM dcicd_old"),
            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM dcicd_delta)",
            f"INSERT INTO {table} BY NAME SELECT * FROM dcicd_merged",
            lambda: log.record("SELECT * FROM dcicd_merged"),
            *record,
        ],
        params,
    )


def _parts(expressions: str) -> list[str]:
    """A comma-separated expression list, split as SQL (commas inside calls stay)."""
    import sqlglot

    parsed = sqlglot.parse_one(f"SELECT {expressions}", read="duckdb").expressions
    return [p.sql(dialect="duckdb") for p in parsed]


def _row(expressions: str) -> str:
    """A comma-separated expression list as one struct, so keys compare whole and NULL-safely."""
    fields = ", ".join(f"k{i} := {p}" for i, p in enumerate(_parts(expressions)))
    return f"struct_pack({fields})"


def _rows_where(table: str, condition: str) -> str:
    """The rows of table meeting condition, found first by the key columns alone (a scan of
    those columns), then fetched whole by row id: reading every column of a large table to
    keep a few rows costs what the table holds, not what is kept."""
    return f"SELECT * FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {condition})"


def by_key(conn, model) -> None:
    """Recompute the keys its upstreams' changes touched; whole when it or an upstream is new."""
    table = model.table
    conn.execute(_STATE_DDL)
    changelog.ensure_meta(conn)
    rebuild, current = _needs_rebuild(conn, model)
    maps = {k.upstream: k for k in model.key_maps}
    cursors = {u: changelog.cursor(conn, table, u) for u in maps}
    remember = f"INSERT OR REPLACE INTO meta.model_versions VALUES ('{table}', '{current}')"
    if rebuild or any(c is None for c in cursors.values()):
        build_full(conn, model, f"CREATE OR REPLACE TABLE {table} AS\n{model.sql}", [remember])
        return

    def changed(upstream: str) -> str:
        since = int(cursors[upstream])
        return f"SELECT * FROM {changelog.changes_table(upstream)} WHERE _seq > {since}"

    touched = []
    for upstream, km in maps.items():
        if not changelog.has_changes(conn, upstream):
            continue
        if km.expression is not None:
            touched.append(f"SELECT {_row(km.expression)} AS k FROM ({changed(upstream)})")
        else:
            via = maps[km.through]
            touched.append(
                f"SELECT {_row(via.expression)} AS k FROM {km.through} WHERE {km.on} IN"
                f" (SELECT {km.on} FROM ({changed(upstream)}))"
            )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE dcicd_affected AS SELECT DISTINCT k FROM ("
        + (" UNION ALL ".join(touched) or "SELECT NULL AS k WHERE false")
        + ")"
    )
    count, null_keys = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE k IS NULL OR k.k0 IS NULL) FROM dcicd_affected"
    ).fetchone()
    if not count:
        in_transaction(conn, [lambda: changelog.advance(conn, table, list(maps)), remember])
        return
    # A key of one column none of whose touched values is NULL is matched as itself: a plain
    # IN over the column, which DuckDB answers with a hash join whose filter reaches the scan,
    # instead of building a struct for every row of the table (costly at 10 million rows).
    plain = len(_parts(model.settings["unique_key"])) == 1 and not null_keys

    def within(expressions: str) -> str:
        if plain:
            return f"({expressions}) IN (SELECT k.k0 FROM dcicd_affected)"
        return f"{_row(expressions)} IN (SELECT k FROM dcicd_affected)"

    def rows(upstream: str, where: str) -> str:
        # By row id only for a plain key: a struct per row, then a join on row ids, costs
        # more than one scan (marts.job_outcomes_by_sha: 0.2 -> 0.8 s at scale 0.25).
        return _rows_where(upstream, where) if plain else f"SELECT * FROM {upstream} WHERE {where}"

    narrowed = {}
    for upstream, km in maps.items():
        if km.expression is not None:
            where = within(km.expression)
        else:
            via = maps[km.through]
            where = f"{km.on} IN (SELECT {km.on} FROM {km.through} WHERE {within(via.expression)})"
        narrowed[tuple(upstream.split("."))] = rows(upstream, where)
    key = within(model.settings["unique_key"])
    old_rows = rows(table, key)
    log = ChangeLog(conn, model)

    in_transaction(
        conn,
        [
            log.start,
            lambda: log.record(old_rows),
            f"DELETE FROM {table} WHERE {key}",
            "CREATE OR REPLACE TEMP TABLE dcicd_fresh AS\n" + replace_tables(model.sql, narrowed),
            f"INSERT INTO {table} BY NAME SELECT * FROM dcicd_fresh",
            lambda: log.record("SELECT * FROM dcicd_fresh"),
            lambda: changelog.advance(conn, table, list(maps)),
            remember,
        ],
    )
