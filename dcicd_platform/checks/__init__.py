"""Data-quality checks (Great Expectations) run as Dagster asset checks."""
