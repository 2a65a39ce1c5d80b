"""`dcicd serve`: the receiver under uvicorn, with JSON access logs and a graceful stop.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, lets in-flight requests finish (up to
`graceful_seconds`), then the application publishes its current landing file.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from dcicd_platform.receiver.app import ReceiverSettings, create_app


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("dcicd.receiver.access")
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO)
    access.propagate = False
    info = logging.StreamHandler(sys.stderr)
    info.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    receiver = logging.getLogger("dcicd.receiver")
    receiver.handlers[:] = [info]
    receiver.setLevel(logging.INFO)


def serve(
    landing: Path,
    host: str = "127.0.0.1",
    port: int = 8787,
    graceful_seconds: float = 30.0,
    access_log: bool = True,
    **options,
) -> None:
    import uvicorn

    configure_logging()
    if not access_log:
        logging.getLogger("dcicd.receiver.access").setLevel(logging.WARNING)
    settings = ReceiverSettings.from_environment(landing, **options)
    missing = sorted({"github", "gitlab", "pagerduty", "metrics"} - set(settings.secrets))
    log = logging.getLogger("dcicd.receiver")
    log.info("landing files go to %s", landing)
    if missing:
        log.warning("no secret for %s: those endpoints answer 503", ", ".join(missing))
    if not settings.gate_token:
        log.warning("DCICD_GATE_TOKEN is not set: POST /gate answers 503")
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=graceful_seconds,
        lifespan="on",
    )
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again for the handler
    # that was there before it: ours notes it, so a requested stop exits 0.
    stops = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: stops.append(number))
    uvicorn.Server(config).run()
    log.info("stopped; the current landing file is published")
