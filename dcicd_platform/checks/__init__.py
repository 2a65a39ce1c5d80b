"""Data-quality checks (Great Expectations' expectations, run as SQL) as Dagster asset checks."""
