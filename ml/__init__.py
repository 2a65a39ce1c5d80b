"""Build predictors: features, training, the MLflow registry and scoring, on DuckDB and Polars.

Plain Python, no Dagster: dcicd_platform/assets/ml_models.py wires these into the asset graph.
"""
