"""Asset definitions, thin: they call ingest/, the dbt_like_sql models and ml/."""
