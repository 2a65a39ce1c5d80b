"""Rewrites `dbt_like_sql/lineage.json`, the remembered lineage of the SQL the code location reads.

`make lineage` runs it after a model or a detector's SQL changes (a test says when it is due).
"""

from __future__ import annotations


def statements() -> list[str]:
    """Every statement whose tables the asset graph needs: the SQL models and the detectors."""
    from dbt_like_sql import load_models
    from ml.anomaly import SQL as DETECTOR_SQL

    return [m.sql for m in load_models()] + list(DETECTOR_SQL)


def main() -> None:
    from dbt_like_sql import lineage

    count = lineage.write(statements())
    print(f"{lineage.LINEAGE_FILE}: the tables read by {count} statements")


if __name__ == "__main__":
    main()
