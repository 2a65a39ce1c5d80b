"""The remembered lineage (dbt_like_sql/lineage.json) is current, and never answers for new SQL."""

from __future__ import annotations

from dbt_like_sql import lineage
from dcicd_platform.lineage_file import statements


def test_the_lineage_file_knows_every_statement_as_a_parse_would_read_it():
    known = lineage._known()
    stale = [
        sql.splitlines()[0][:60]
        for sql in statements()
        if known.get(lineage.digest(sql)) != lineage.parse_tables_read(sql)
    ]
    assert not stale, f"dbt_like_sql/lineage.json is out of date (run `make lineage`): {stale}"


def test_an_edited_statement_is_parsed_not_looked_up(tmp_path):
    sql = statements()[0]
    edited = sql + "\nUNION ALL BY NAME SELECT * FROM marts.some_new_table"
    assert lineage.digest(edited) not in lineage._known()
    assert ("marts", "some_new_table") in lineage.tables_read(edited)
    assert set(lineage.tables_read(sql)) < set(lineage.tables_read(edited))


def test_a_statement_that_does_not_parse_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="does not parse"):
        lineage.tables_read("SELECT FROM WHERE (")
