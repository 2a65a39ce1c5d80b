"""The suite ignores the user's set-up: ./dcicd.yaml and the DCICD_*, MLflow, Dagster variables.

`make demo` then `make test` is what the README tells a newcomer to type, and CI types it too
(.ci/run); this proves the isolation tests/conftest.py gives every test, whatever the user has.
"""

from pathlib import Path

CONFTEST = Path(__file__).parent / "conftest.py"

INNER_TEST = """
import os
from pathlib import Path

from dcicd_platform.config import PlatformConfig, load_config
from dcicd_platform.home import Home


def test_sees_none_of_the_user_set_up():
    assert load_config() == PlatformConfig()
    assert not Path("dcicd.yaml").exists()
    assert [v for v in os.environ if "bogus" in os.environ[v]] == []
    home = Home.from_env()
    assert home.root == Path.cwd() / ".dcicd"
    assert home.mlflow_tracking_uri == f"sqlite:///{home.root / 'mlflow.db'}"
    assert home.dagster_home == home.root / "dagster"
"""


def test_a_test_reads_no_user_configuration_nor_variable(pytester, monkeypatch):
    # What a user may have: a hostile ./dcicd.yaml where they run pytest, and every variable.
    (pytester.path / "dcicd.yaml").write_text("automation:\n  mode: live\n  nonsense: 1\n")
    for name in ("DCICD_HOME", "DCICD_CONFIG", "MLFLOW_TRACKING_URI", "DAGSTER_HOME"):
        monkeypatch.setenv(name, f"/bogus/{name}")
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_without_the_isolation_the_inner_test_would_fail(pytester, monkeypatch):
    """The inner test can fail: without conftest.py it meets the user's file and variables."""
    (pytester.path / "dcicd.yaml").write_text("automation:\n  mode: live\n")
    monkeypatch.setenv("DCICD_HOME", "/bogus/home")
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
