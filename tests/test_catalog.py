"""The small helpers every layer shares: what a DuckDB database holds, rows as records, files
that appear whole."""

import duckdb
import pytest

from dbt_like_sql.catalog import existing_tables, fetch_dicts, table_exists
from dcicd_platform.files import partial_path, replaced_whole
from dcicd_platform.screens import rounded_as_duckdb


def test_table_exists_and_rows_as_records(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        assert not table_exists(conn, "ops.actions")
        conn.execute("CREATE SCHEMA ops; CREATE TABLE ops.actions (kind VARCHAR, n INT)")
        conn.execute("INSERT INTO ops.actions VALUES ('alert', 2), ('rollback', 1)")
        assert table_exists(conn, "ops.actions")
        assert not table_exists(conn, "ops.other")
        assert "ops.actions" in existing_tables(conn)
        assert fetch_dicts(conn, "SELECT * FROM ops.actions WHERE n > ? ORDER BY n", [0]) == [
            {"kind": "rollback", "n": 1},
            {"kind": "alert", "n": 2},
        ]


def test_a_file_replaced_whole_appears_only_when_written(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("last week")
    with replaced_whole(target) as partial:
        partial.write_text("this week")
        assert target.read_text() == "last week"  # a reader still sees the whole old file
    assert target.read_text() == "this week"
    assert not partial_path(target).exists()

    with pytest.raises(RuntimeError), replaced_whole(target) as partial:
        partial.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "this week"
    assert not partial_path(target).exists()


@pytest.mark.parametrize("value", [0.1235, 44.5625, -44.5625, 2.675, 0.0005, 30.7536, None])
def test_the_scorecard_rounds_as_duckdb_does(value):
    with duckdb.connect() as conn:
        expected = conn.execute("SELECT round(?::DOUBLE, 3)", [value]).fetchall()[0][0]
    assert rounded_as_duckdb(value) == expected
