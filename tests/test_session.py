"""Every writable connection finds the macros, made again only when their text changed."""

import shutil

import duckdb

from dbt_like_sql import session
from dbt_like_sql.session import prepare_session


def macro_names(conn) -> set[str]:
    return {
        name
        for (name,) in conn.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_type LIKE '%macro%'"
            " AND database_name = current_database()"
        ).fetchall()
    }


def test_macros_are_made_once_and_again_when_their_text_changes(tmp_path, monkeypatch):
    warehouse = str(tmp_path / "warehouse.duckdb")
    macros = tmp_path / "macros"
    shutil.copytree(session.MACROS_ROOT, macros)
    monkeypatch.setattr(session, "MACROS_ROOT", macros)
    with duckdb.connect(warehouse) as conn:
        prepare_session(conn)
        assert {"dcicd_ts", "dcicd_conclusion", "dcicd_macros_version"} <= macro_names(conn)
        assert conn.execute("SELECT dcicd_ts('2026-03-02T10:00:00Z')::VARCHAR").fetchone() == (
            "2026-03-02 10:00:00+00",
        )
        # Dropped behind the version's back: the version still matches, nothing is redone.
        conn.execute("DROP MACRO dcicd_conclusion")
        prepare_session(conn)
        assert "dcicd_conclusion" not in macro_names(conn)
        # A changed text makes them all again, the new one included.
        (macros / "extra.sql").write_text("CREATE OR REPLACE MACRO dcicd_twice(x) AS x * 2;\n")
        prepare_session(conn)
        assert {"dcicd_conclusion", "dcicd_twice"} <= macro_names(conn)
        assert conn.execute("SELECT dcicd_twice(21)").fetchone() == (42,)
    # A read-only connection finds what its writers made.
    with duckdb.connect(warehouse, read_only=True) as reader:
        prepare_session(reader)
        assert reader.execute("SELECT dcicd_twice(4)").fetchone() == (8,)
