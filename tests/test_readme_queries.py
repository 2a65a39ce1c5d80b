"""The README's analyst queries run, and answer something, on the sample organisation."""

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from dcicd_platform.config import parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from tests.helpers import build_core

README = Path(__file__).parent.parent / "README.md"


def readme_queries() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Query the warehouse") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    files = generate_organisation(
        folder / "landing", seed=5, days=45, end=datetime(2026, 5, 1, tzinfo=UTC)
    )
    conn = duckdb.connect(str(folder / "w.duckdb"))
    load_files(conn, files)
    build_core(conn, parse_config(demo_config_yaml()))
    return conn


def test_the_readme_shows_five_queries():
    assert len(readme_queries()) == 5


@pytest.mark.parametrize("number", range(5))
def test_readme_query_answers(warehouse, number):
    rows = warehouse.execute(readme_queries()[number]).fetchall()
    assert rows, readme_queries()[number]
