"""Any arrival order gives the tables one full build gives.

Providers deliver out of order (GitLab sends a pipeline's job events before the pipeline, a
webhook retried an hour later lands after newer ones), and every load is refreshed on its own.
Here the same events, shuffled and cut into 2 to 5 loads, are refreshed after each load; every
model's table must then hold exactly the rows of one build over all the events at once.
"""

import json
import random
from pathlib import Path

import duckdb
import pytest

from dbt_like_sql import load_models
from dcicd_platform.config import PlatformConfig, parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from tests import real_history
from tests.helpers import build_core
from tests.test_incremental import END, same_rows

MODELS = [m.table for m in load_models()]


def demo_events(folder: Path) -> tuple[list[str], PlatformConfig]:
    files = generate_organisation(folder, seed=21, days=20, end=END)
    lines = [line for path in sorted(files) for line in path.read_text().splitlines() if line]
    return lines, parse_config(demo_config_yaml())


def real_events(folder: Path) -> tuple[list[str], PlatformConfig]:
    if not real_history.DATASET.exists():
        pytest.skip(f"the real history is not at {real_history.DATASET}")
    items = real_history.envelopes(days=("2026-05-20", "2026-05-20"))
    for item in items[::2]:
        # Job events from before GitHub named the workflow in them: taken from the run.
        item["payload"].get("workflow_job", {}).pop("workflow_name", None)
    return [json.dumps(item) for item in items], PlatformConfig()


SOURCES = {"demo": demo_events, "real": real_events}


@pytest.fixture(scope="module", params=sorted(SOURCES))
def one_full_build(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    lines, config = SOURCES[request.param](folder / "generated")
    path = folder / "full.duckdb"
    all_at_once = folder / "all.ndjson"
    all_at_once.write_text("\n".join(lines) + "\n")
    with duckdb.connect(str(path)) as conn:
        load_files(conn, [all_at_once])
        build_core(conn, config)
    return lines, config, str(path)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_loads_refreshed_one_by_one_equal_one_full_build(one_full_build, tmp_path, seed):
    lines, config, full_path = one_full_build
    rng = random.Random(seed)
    shuffled = lines[:]
    rng.shuffle(shuffled)
    loads = 1 + seed  # 2, 3 and 4 loads; 5 below
    cuts = sorted(rng.sample(range(1, len(shuffled)), loads - 1))
    parts = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]
    conn = duckdb.connect(str(tmp_path / "stepwise.duckdb"))
    for number, part in enumerate(parts):
        path = tmp_path / f"load-{number}.ndjson"
        path.write_text("\n".join(part) + "\n")
        load_files(conn, [path])
        build_core(conn, config)
    different = [table for table in MODELS if not same_rows(conn, full_path, table)]
    assert different == []


def test_five_loads_in_reverse_order(one_full_build, tmp_path):
    """The hardest order: every later state first (jobs before their runs, runs before they
    start), then what came before it."""
    lines, config, full_path = one_full_build
    conn = duckdb.connect(str(tmp_path / "stepwise.duckdb"))
    reverse = lines[::-1]
    size = -(-len(reverse) // 5)
    for number in range(5):
        path = tmp_path / f"load-{number}.ndjson"
        path.write_text("\n".join(reverse[number * size : (number + 1) * size]) + "\n")
        load_files(conn, [path])
        build_core(conn, config)
    different = [table for table in MODELS if not same_rows(conn, full_path, table)]
    assert different == []
