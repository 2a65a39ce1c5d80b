"""The configuration: defaults for every key, clear errors naming a wrong key or type."""

import re
from pathlib import Path

import pytest

from dcicd_platform.config import ConfigError, PlatformConfig, load_config, parse_config

EXAMPLE = Path(__file__).parent.parent / "dcicd.example.yaml"


def test_no_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DCICD_CONFIG", raising=False)
    config = load_config()
    assert config == PlatformConfig()
    assert config.automation.mode == "shadow" and config.attribution_window_days == 7


def test_example_file_loads_and_documents_every_key():
    config = load_config(EXAMPLE)
    assert config.services, "the example shows at least one service"
    text = EXAMPLE.read_text()

    def keys(model) -> set[str]:
        found = set()
        for name, field in model.model_fields.items():
            found.add(name)
            annotation = field.annotation
            for candidate in getattr(annotation, "__args__", ()) + (annotation,):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    found |= keys(candidate)
        return found

    undocumented = [
        k for k in keys(PlatformConfig) if not re.search(rf"^\s*-?\s*#?\s*{k}:", text, re.M)
    ]
    assert undocumented == []


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"automation\.moed: unknown key"):
        parse_config("automation:\n  moed: live\n")


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"services\.0\.repositories"):
        parse_config("services:\n  - name: a\n    repositories: 12\n")
    with pytest.raises(ConfigError, match=r"automation\.mode"):
        parse_config("automation:\n  mode: yolo\n")


def test_a_repository_in_two_services_is_refused():
    text = "services:\n  - name: a\n    repositories: [x/y]\n  - name: b\n    repositories: [x/y]\n"
    with pytest.raises(ConfigError, match="belongs to both"):
        parse_config(text)


MONOREPO = """
services:
  - name: payments
    repositories: [acme/mono]
    paths: ["services/payments/**"]
    workflows: ["payments-*"]
  - name: search
    repositories: [acme/mono, acme/search-ui]
    paths: ["services/search/**"]
  - name: shop
    repositories: [acme/shop]
"""


def test_services_sharing_a_repository_each_name_their_paths():
    config = parse_config(MONOREPO)
    assert config.path_repositories() == {"acme/mono", "acme/search-ui"}
    one_without = MONOREPO.replace('    paths: ["services/search/**"]\n', "")
    with pytest.raises(ConfigError, match="belongs to both 'payments' and 'search'"):
        parse_config(one_without)
    with pytest.raises(ConfigError, match=r"services\.0\.paths"):
        parse_config(MONOREPO.replace('"services/payments/**"', '"/services/payments/**"'))


def test_shared_repositories_are_split_by_paths_in_the_config_tables():
    import duckdb

    from dcicd_platform.assets.config_tables import write_config_tables

    conn = duckdb.connect()
    counts = write_config_tables(conn, parse_config(MONOREPO))
    assert counts["service_repositories"] == 2 and counts["service_paths"] == 4
    # One service a repository: the mapping every repository-level figure joins.
    owners = conn.execute("SELECT repo, service FROM config.service_repositories ORDER BY 1")
    assert owners.fetchall() == [("acme/search-ui", "search"), ("acme/shop", "shop")]
    paths = conn.execute(
        "SELECT service, repo, position, paths, workflows, shared FROM config.service_paths"
        " ORDER BY position, repo"
    ).fetchall()
    assert paths == [
        ("payments", "acme/mono", 0, ["services/payments/**"], ["payments-*"], True),
        ("search", "acme/mono", 1, ["services/search/**"], [], True),
        ("search", "acme/search-ui", 1, ["services/search/**"], [], False),
        ("shop", "acme/shop", 2, [], [], False),
    ]


def test_missing_file_named_by_dcicd_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DCICD_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config()


def test_runner_rates_first_match_wins():
    config = PlatformConfig()
    assert config.ci_cost.rate_for("ubuntu-latest") == 0.006
    assert config.ci_cost.rate_for("self-hosted,linux,x64") == 0.0
    assert config.ci_cost.rate_for("macos-14") == 0.062
    assert config.ci_cost.rate_for("my-runner") == 0.0


def test_the_reporting_time_zone_is_an_iana_name():
    assert PlatformConfig().reporting.time_zone == "UTC"
    config = parse_config("reporting:\n  time_zone: Europe/Berlin\n")
    assert config.reporting.time_zone == "Europe/Berlin"
    for wrong in ("Europe/Berln", "CEST", "+02:00", "localtime", "europe/berlin"):
        with pytest.raises(ConfigError, match=r"reporting\.time_zone: .*unknown time zone"):
            parse_config(f"reporting:\n  time_zone: '{wrong}'\n")


def test_rework_settings():
    dora = PlatformConfig().dora
    assert (dora.rework_window_hours, dora.hotfix_pattern) == (24, "hotfix")
    dora = parse_config("dora:\n  rework_window_hours: 12\n  hotfix_pattern: null\n").dora
    assert (dora.rework_window_hours, dora.hotfix_pattern) == (12, None)
    with pytest.raises(ConfigError, match=r"dora\.hotfix_pattern: .*not a regular expression"):
        parse_config("dora:\n  hotfix_pattern: 'hotfix/(\\d+'\n")
    with pytest.raises(ConfigError, match=r"dora\.rework_window_hours"):
        parse_config("dora:\n  rework_window_hours: -1\n")
