"""warehouse.memory_limit: every warehouse connection carries it and spills to $DCICD_HOME/tmp."""

from pathlib import Path

import dagster as dg
import pytest

from dcicd_platform.config import ConfigError, parse_config
from dcicd_platform.definitions import build_definitions
from dcicd_platform.home import Home
from dcicd_platform.resources import WarehouseResource, read_only_connection, warehouse_resource

SETTINGS = "SELECT current_setting('memory_limit'), current_setting('temp_directory')"


def test_the_default_limit_is_4gb_and_a_size_is_checked():
    assert parse_config("").warehouse.memory_limit == "4GB"
    assert parse_config("warehouse:\n  memory_limit: 1536MB\n").warehouse.memory_limit == "1536MB"
    with pytest.raises(ConfigError, match=r"warehouse\.memory_limit"):
        parse_config("warehouse:\n  memory_limit: lots\n")


def test_the_jobs_and_readers_connections_carry_the_configured_limit(tmp_path, monkeypatch):
    config = tmp_path / "dcicd.yaml"
    config.write_text("warehouse:\n  memory_limit: 300MiB\n")
    monkeypatch.setenv("DCICD_CONFIG", str(config))
    home = Home(tmp_path / "home").prepare()
    defs = build_definitions(home, str(config))
    seen = []

    @dg.asset
    def probe(warehouse: WarehouseResource) -> None:  # an asset, as the jobs' steps get it
        with warehouse.get_connection() as conn:
            seen.append(conn.execute(SETTINGS).fetchone())

    assert dg.materialize([probe], resources={"warehouse": defs.resources["warehouse"]}).success
    assert seen == [("300.0 MiB", str(home.tmp))]
    with read_only_connection(home.warehouse) as conn:  # the CLI's and the sensor's reader
        assert conn.execute(SETTINGS).fetchone() == ("300.0 MiB", str(home.tmp))


def test_the_default_applies_without_a_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DCICD_CONFIG", raising=False)
    warehouse = tmp_path / "warehouse.duckdb"
    with warehouse_resource(warehouse).get_connection() as conn:
        limit, temp = conn.execute(SETTINGS).fetchone()
    assert limit == "3.7 GiB" and Path(temp) == tmp_path / "tmp"  # 4GB = 3.7 GiB


def test_a_query_larger_than_the_limit_spills_to_the_home_instead_of_failing(tmp_path):
    home = Home(tmp_path)
    with warehouse_resource(home.warehouse, memory_limit="48MB", threads="1").get_connection() as (
        conn
    ):
        conn.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(2000000) t(i)")
        ranked = "SELECT max(r) FROM (SELECT row_number() OVER (ORDER BY s) AS r FROM t)"
        assert conn.execute(ranked).fetchone() == (2_000_000,)
        assert home.tmp.is_dir(), "the sort spilled to $DCICD_HOME/tmp"
