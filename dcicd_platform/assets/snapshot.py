"""warehouse/snapshot: the state readers fall back to while a refresh is writing."""

from pathlib import Path

import dagster as dg

from dcicd_platform.gate.audit import write_journal
from dcicd_platform.resources import DUCKDB_POOL, WarehouseResource, publish_snapshot


def snapshot_asset(upstream: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=["warehouse", "snapshot"],
        deps=upstream,
        group_name="publish",
        kinds={"duckdb"},
        pool=DUCKDB_POOL,
        owners=["team:platform"],
    )
    def warehouse_snapshot(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """A consistent copy of the warehouse, published after every table is refreshed, so an
        analyst's query during the next refresh answers from it instead of waiting. Only what
        changed since the copy was last published is written (`publish_snapshot`). Gate
        verdicts given while the refresh held the warehouse are written into ops.gates first."""
        with warehouse.get_connection() as conn:
            write_journal(conn, Path(warehouse.database).parent)
            path, written = publish_snapshot(conn, Path(warehouse.database))
        size = path.stat().st_size
        context.log.info(f"published {path}: {written:,} of {size:,} bytes written")
        return dg.MaterializeResult(
            metadata={"path": str(path), "size_bytes": size, "written_bytes": written}
        )

    return warehouse_snapshot
