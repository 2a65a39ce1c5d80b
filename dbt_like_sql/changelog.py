"""What changed in a model's table, kept until every model that reads it incrementally has seen it.

Each build of a model that others read by key gets a number from one sequence. An incremental
build writes the rows it replaced (old images) and the rows it wrote (new images) into
`changes.<schema>__<name>`, tagged with that number; a whole rebuild writes none and is marked
`full`. A reader remembers, per table it reads, the last build number it consumed (its cursor):
it then reads only the changes after its cursor, or rebuilds whole when a full build of the
table came after it. A reader that did not run (a failed check upstream, a stopped refresh)
loses nothing: the changes stay until the slowest reader's cursor has passed them.

Other code may follow a table's changes the same way (a data-quality check, an anomaly
detector: a *consumer*, which holds a cursor but builds no table): `pending` gives the changes
after its cursor, `consume` moves the cursor. A consumer never holds changes back from a
model's build (only the models reading by key do), so `meta.changes_pruned` remembers up to
which build each table's changes were dropped: a consumer behind that reads the table whole.
"""

from __future__ import annotations

from dbt_like_sql.catalog import table_exists

META_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE SCHEMA IF NOT EXISTS changes;
CREATE SEQUENCE IF NOT EXISTS meta.build_seq;
CREATE TABLE IF NOT EXISTS meta.model_builds (
    model VARCHAR, seq BIGINT, full_rebuild BOOLEAN, built_at TIMESTAMPTZ DEFAULT now());
CREATE TABLE IF NOT EXISTS meta.model_cursors (model VARCHAR, upstream VARCHAR, seq BIGINT);
CREATE TABLE IF NOT EXISTS meta.changes_pruned (model VARCHAR PRIMARY KEY, seq BIGINT);
"""


def ensure_meta(conn) -> None:
    conn.execute(META_DDL)


def changes_table(table: str) -> str:
    """Where the changes of schema.table are kept: changes.schema__table."""
    schema, name = table.split(".")
    return f"changes.{schema}__{name}"


def start_build(conn, table: str, *, full: bool) -> int:
    """A new build number for table; a full build also empties its changes (readers rebuild)."""
    seq = conn.execute("SELECT nextval('meta.build_seq')").fetchone()[0]
    conn.execute("INSERT INTO meta.model_builds VALUES (?, ?, ?, now())", [table, seq, full])
    if full:
        conn.execute(f"DROP TABLE IF EXISTS {changes_table(table)}")
    return seq


def record(conn, table: str, seq: int, rows_sql: str) -> None:
    """Append the rows a SELECT returns (old or new images of table's rows) as seq's changes."""
    target = changes_table(table)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {target} AS SELECT *, 0::BIGINT AS _seq FROM {table} LIMIT 0"
    )
    conn.execute(
        f"INSERT INTO {target} BY NAME SELECT *, {int(seq)}::BIGINT AS _seq FROM ({rows_sql})"
    )


def prune(conn, table: str, readers: tuple[str, ...] | None = None) -> None:
    """Drop the changes of table that every reader has consumed (all, if no reader has a cursor).

    The readers are the models that read table by key; None means every model holding a cursor.
    """
    if not has_changes(conn, table):
        return
    known = "" if readers is None else " AND model IN (SELECT unnest($readers))"
    oldest = conn.execute(
        f"SELECT min(seq) FROM meta.model_cursors WHERE upstream = $table{known}",
        {"table": table} | ({} if readers is None else {"readers": list(readers)}),
    ).fetchone()[0]
    conn.execute(f"DELETE FROM {changes_table(table)} WHERE _seq <= ?", [oldest or 2**62])
    conn.execute(
        "INSERT INTO meta.changes_pruned VALUES (?, ?)"
        " ON CONFLICT (model) DO UPDATE SET seq = greatest(seq, excluded.seq)",
        [table, oldest or 2**62],
    )


def has_changes(conn, table: str) -> bool:
    return table_exists(conn, changes_table(table))


def latest_build(conn, table: str) -> int | None:
    return conn.execute(
        "SELECT max(seq) FROM meta.model_builds WHERE model = ?", [table]
    ).fetchone()[0]


def cursor(conn, reader: str, table: str) -> int | None:
    """The last build of table that reader consumed, or None if it must read table whole."""
    row = conn.execute(
        "SELECT seq FROM meta.model_cursors WHERE model = ? AND upstream = ?", [reader, table]
    ).fetchone()
    if row is None or row[0] is None:
        return None
    rebuilt_since = conn.execute(
        "SELECT count(*) FROM meta.model_builds WHERE model = ? AND seq > ? AND full_rebuild",
        [table, row[0]],
    ).fetchone()[0]
    return None if rebuilt_since else row[0]


def advance(conn, reader: str, tables: list[str]) -> None:
    """Mark every build of tables so far as consumed by reader, and drop what all have consumed."""
    conn.execute("DELETE FROM meta.model_cursors WHERE model = ?", [reader])
    for table in tables:
        conn.execute(
            "INSERT INTO meta.model_cursors VALUES (?, ?, ?)",
            [reader, table, latest_build(conn, table)],
        )
        prune(conn, table)


def pending(
    conn, consumer: str, table: str, up_to: int | None = None
) -> tuple[str | None, int | None]:
    """(SELECT of the changes of table after consumer's cursor, the build to consume up to).

    The SELECT gives the old and new images of every row a build replaced or wrote, with `_seq`
    (its build); it is None when the consumer must read the table whole: it never consumed it,
    the table was rebuilt whole since, keeps no change log, or dropped changes the consumer has
    not seen. up_to stops at a build (a model's own cursor: what a table built from this one
    has taken in); the default is the latest build. Call `consume` with the second value once
    the changes are acted on (None: the table keeps no change log, there is nothing to hold).
    """
    ensure_meta(conn)
    latest = latest_build(conn, table)
    if latest is None:
        return None, None
    until = latest if up_to is None else min(int(up_to), latest)
    seq = cursor(conn, consumer, table)
    if seq is None or seq > until:
        return None, until
    pruned = conn.execute("SELECT seq FROM meta.changes_pruned WHERE model = ?", [table]).fetchone()
    if pruned is not None and pruned[0] > seq:
        return None, until
    if not has_changes(conn, table):  # no build wrote a change since the cursor
        return f"SELECT *, 0::BIGINT AS _seq FROM {table} WHERE false", until
    return (
        f"SELECT * FROM {changes_table(table)} WHERE _seq > {int(seq)} AND _seq <= {until}",
        until,
    )


def consume(conn, consumer: str, seqs: dict[str, int | None]) -> None:
    """Mark consumer as having acted on each table's changes up to its build in seqs (None:
    forget the cursor, the next read is whole)."""
    ensure_meta(conn)
    for table, seq in seqs.items():
        conn.execute(
            "DELETE FROM meta.model_cursors WHERE model = ? AND upstream = ?", [consumer, table]
        )
        if seq is not None:
            conn.execute("INSERT INTO meta.model_cursors VALUES (?, ?, ?)", [consumer, table, seq])
