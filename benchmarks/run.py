"""`make bench`: every benchmark, each printing its figures and the ratio to its baseline."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = [
    "ingest.py",
    "refresh.py",
    "commit_graph.py",
    "real_history.py",
    "history_import.py",
    "receiver.py",
    "gate.py",
    "ml.py",
    "predictors.py",
    "anomalies.py",
    "checks_and_detectors.py",
    "time_to_rollback.py",
]

if __name__ == "__main__":
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(HERE / name)], check=True)
