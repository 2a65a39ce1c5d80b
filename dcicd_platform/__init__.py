"""dcicd: CI/CD intelligence on Dagster and DuckDB."""

__version__ = "0.1.0"
