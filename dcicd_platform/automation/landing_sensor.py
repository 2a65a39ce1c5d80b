"""The landing sensor: one ingestion run per new file in landing/, keyed by its content hash.

It looks every 10 seconds (a listing of landing/ and a stat per file; a file is hashed only
when new or changed): a bad deployment's health samples wait at most that long to be loaded,
then the watch starts on them (watch_trigger.py).
"""

import json
from pathlib import Path

import dagster as dg

from dcicd_platform.automation.jobs import ingest_job
from dcicd_platform.home import Home
from dcicd_platform.ingest.loader import UnreadableFile, content_hash, discover


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@dg.sensor(
    name="landing_files",
    job=ingest_job,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts one run per new landing file; the run key is the file's SHA-256.",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    landing = Home.from_env().landing
    if not landing.exists():
        return dg.SkipReason(f"no landing folder at {landing}")
    # The cursor remembers each file's size and mtime, so unchanged files are not hashed again.
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current: dict[str, str] = {}
    requests = []
    for path in discover([landing]):
        name = str(path.relative_to(landing))
        if path.relative_to(landing).parts[0] == "import":
            continue  # the history import loads what it lands itself, as one run
        try:
            fingerprint = _fingerprint(path)
            current[name] = fingerprint
            if seen.get(name) == fingerprint:
                continue
            digest = content_hash(path)
        except (OSError, UnreadableFile) as exc:
            context.log.warning(f"cannot read {name}: {exc}")
            current.pop(name, None)
            continue
        requests.append(
            dg.RunRequest(
                run_key=digest,
                run_config={"ops": {"raw__events": {"config": {"files": [str(path)]}}}},
                tags={"dcicd/landing_file": name},
            )
        )
    context.update_cursor(json.dumps(current, sort_keys=True))
    return requests or dg.SkipReason("no new landing files")
