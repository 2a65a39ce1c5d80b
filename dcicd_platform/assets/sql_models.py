"""One Dagster asset per SQL model in dbt_like_sql/, with the dependencies its SQL reads."""

import dagster as dg

from dbt_like_sql import SqlModel, build_model, load_models
from dcicd_platform.assets.versions import table_version
from dcicd_platform.dora_summary import as_markdown, summary_rows
from dcicd_platform.resources import DUCKDB_POOL, WarehouseResource


def _dora_preview(conn) -> dict:
    rows, as_of = summary_rows(conn, 30)
    return {"summary_30d": dg.MetadataValue.md(f"The 30 days to {as_of}:\n\n{as_markdown(rows)}")}


# Tables whose materialization also shows a preview in the UI, so it tells the story unqueried.
PREVIEWS = {"marts.dora_summary": _dora_preview}


def sql_model_asset(model: SqlModel) -> dg.AssetsDefinition:
    @dg.asset(
        key=[model.schema, model.name],
        deps=[dg.AssetKey([schema, name]) for schema, name in model.reads],
        description=model.description,
        group_name=model.schema,
        kinds={"duckdb", "sql"},
        pool=DUCKDB_POOL,
        owners=["team:platform"],
        metadata={"sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```")},
    )
    def _build(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        with warehouse.get_connection() as conn:
            rows = build_model(conn, model)
            metadata = {"dagster/row_count": rows}
            if model.table in PREVIEWS:
                metadata |= PREVIEWS[model.table](conn)
            version = table_version(conn, model.table)
        context.log.info(f"{model.table}: {rows} rows")
        return dg.MaterializeResult(metadata=metadata, data_version=version)

    return _build


def sql_model_assets() -> list[dg.AssetsDefinition]:
    return [sql_model_asset(m) for m in load_models()]
