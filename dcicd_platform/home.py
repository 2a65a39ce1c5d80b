"""Where the platform keeps its files: one home folder, named by DCICD_HOME (CONTRACTS.md §1)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DAGSTER_YAML = """\
# Written by dcicd when absent. The DuckDB warehouse takes one writer at a time, so every asset
# that opens it runs in the `duckdb` pool, limited to one slot. One more run may be launched
# while the slot is taken (its process started, its code loaded): a rollback or a watch then
# waits for the running step alone, and takes the slot first (its `dagster/priority`).
concurrency:
  pools:
    default_limit: 1
    op_granularity_run_buffer: 1
  # One watch run at a time: a second waits in the queue rather than take turns with the first.
  runs:
    tag_concurrency_limits:
      - key: dcicd/serial
        value: watch
        limit: 1
# The daemon looks at the run queue every 2 seconds, and evaluates sensors side by side: a slow
# look (the anomaly sensor reading the warehouse) never delays another's.
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 2
sensors:
  use_threads: true
  num_workers: 4
telemetry:
  enabled: false
"""


@dataclass(frozen=True)
class Home:
    """The folders and files under DCICD_HOME."""

    root: Path

    @classmethod
    def from_env(cls) -> Home:
        return cls(Path(os.environ.get("DCICD_HOME", ".dcicd")).absolute())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def tmp(self) -> Path:
        """Where the warehouse's connections spill what exceeds warehouse.memory_limit."""
        return self.root / "tmp"

    @property
    def mlflow_tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI when set, else a sqlite store in the home."""
        configured = os.environ.get("MLFLOW_TRACKING_URI")
        return configured or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def dagster_home(self) -> Path:
        """DAGSTER_HOME as the user set it, else a folder inside the home."""
        configured = os.environ.get("DAGSTER_HOME")
        return Path(configured).absolute() if configured else self.root / "dagster"

    def prepare(self) -> Home:
        """Create the folders and a dagster.yaml with the `duckdb` pool limit when absent."""
        self.landing.mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists():
            dagster_yaml.write_text(DAGSTER_YAML)
        return self

    def activate(self) -> Home:
        """Prepare the home and point this process's Dagster instance at it."""
        self.prepare()
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        return self


if __name__ == "__main__":  # `make dev` asks for DAGSTER_HOME this way
    print(Home.from_env().prepare().dagster_home)
