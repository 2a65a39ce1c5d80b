"""Every test runs apart from the user's set-up.

A newcomer types `make demo` then `make test`: the demo leaves ./dcicd.yaml and ./.dcicd in the
checkout, and a user may have DCICD_HOME, DCICD_CONFIG, MLFLOW_TRACKING_URI or DAGSTER_HOME set.
No test may read any of them: each test starts in an empty folder of its own with those
variables unset, and a test that wants one sets it itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

USER_VARIABLES = ("DCICD_HOME", "DCICD_CONFIG", "MLFLOW_TRACKING_URI", "DAGSTER_HOME")


def _isolate(patch: pytest.MonkeyPatch, folder: Path) -> None:
    for name in USER_VARIABLES:
        patch.delenv(name, raising=False)
    folder.mkdir(parents=True, exist_ok=True)
    patch.chdir(folder)


@pytest.fixture(scope="session", autouse=True)
def _away_from_the_user_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """For session- and module-scoped fixtures too, which start before any test's own."""
    with pytest.MonkeyPatch.context() as patch:
        _isolate(patch, tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(autouse=True)
def _away_from_the_user(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """An empty working folder per test, so what one test writes to ./ no other reads."""
    _isolate(monkeypatch, tmp_path_factory.mktemp("cwd"))
