"""The receiver's Starlette application: authenticate, parse, append durably, then answer.

Every accepted delivery becomes one landing envelope line (CONTRACTS.md section 2) whose
payload is the provider's body byte for byte (its insignificant line breaks turned to spaces,
so the envelope stays on one line). Answers: 202 once the line is fsync'd; 401 for a missing
or wrong signature; 400 for a body that is not a JSON object or lacks what names the event;
413 past the size limit; 503 when the source has no secret configured. Nothing is written
unless the answer is 202.

The promotion gate answers here too: `POST /gate` (bearer DCICD_GATE_TOKEN) with
`{"service", "sha", "environment"}` gets the verdict as JSON (200 whatever the verdict; 503
without a token configured); a GitHub `deployment_protection_rule` delivery, once stored, is
decided and answered through GitHub's REST API (DCICD_GITHUB_TOKEN) after the 202.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dcicd_platform.gate.cache import GateCache
from dcicd_platform.ingest.envelope import rfc3339
from dcicd_platform.receiver import signatures
from dcicd_platform.receiver.landing_writer import LandingWriter, recover_parts

GITHUB_MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB (docs: webhook events)
SECRET_ENV = {
    "github": "DCICD_GITHUB_WEBHOOK_SECRET",
    "gitlab": "DCICD_GITLAB_WEBHOOK_TOKEN",
    "pagerduty": "DCICD_PAGERDUTY_WEBHOOK_SECRET",
    "metrics": "DCICD_HEALTH_TOKEN",
}
GATE_TOKEN_ENV = "DCICD_GATE_TOKEN"
GITHUB_TOKEN_ENV = "DCICD_GITHUB_TOKEN"
access_log = logging.getLogger("dcicd.receiver.access")


@dataclass
class ReceiverSettings:
    landing: Path
    secrets: dict[str, str] = field(default_factory=dict)
    max_body_bytes: int = GITHUB_MAX_BODY
    rotate_bytes: int = 64 << 20
    rotate_seconds: float = 60.0
    min_free_bytes: int = 1 << 30
    durable: bool = True  # False only for the benchmark's floor: answer without writing
    gate_token: str | None = None
    github_token: str | None = None  # answers deployment protection rules
    flush_seconds: float = 2.0  # how often the gate's journal is moved into ops.gates

    @property
    def home(self) -> Path:
        """DCICD_HOME: the landing folder's parent, where the warehouse is."""
        return self.landing.parent

    @classmethod
    def from_environment(cls, landing: Path, **options) -> ReceiverSettings:
        secrets = {s: os.environ[v] for s, v in SECRET_ENV.items() if os.environ.get(v)}
        return cls(
            landing=landing,
            secrets=secrets,
            gate_token=os.environ.get(GATE_TOKEN_ENV) or None,
            github_token=os.environ.get(GITHUB_TOKEN_ENV) or None,
            **options,
        )


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> object:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(400, f"body is not UTF-8 JSON: {exc}") from None


def _object(body: bytes) -> dict:
    payload = _parse(body)
    if not isinstance(payload, dict):
        raise Rejected(400, "body is not a JSON object")
    return payload


def envelope_bytes(delivery_id: str, source: str, event_type: str, body: bytes) -> bytes:
    """One envelope line around a body already known to be UTF-8 JSON."""
    head = json.dumps(
        {
            "delivery_id": delivery_id,
            "source": source,
            "event_type": event_type,
            "received_at": rfc3339(datetime.now(UTC)),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # Raw line breaks in valid JSON are whitespace between tokens (inside strings they must be
    # escaped), so turning them to spaces keeps the payload's meaning and the line whole.
    one_line = body.replace(b"\r", b" ").replace(b"\n", b" ")
    return head[:-1].encode() + b',"payload":' + one_line + b"}\n"


def _content_id(prefix: str, body: bytes) -> str:
    return f"{prefix}:sha256:{hashlib.sha256(body).hexdigest()}"


# Each reader returns the envelope lines of one delivery, or raises Rejected.
def _github(request: Request, body: bytes, secret: str) -> tuple[str, bytes]:
    if not signatures.github_valid(body, request.headers.get("x-hub-signature-256"), secret):
        raise Rejected(401, "missing or wrong X-Hub-Signature-256")
    event = request.headers.get("x-github-event")
    delivery = request.headers.get("x-github-delivery")
    if not event or not delivery:
        raise Rejected(400, "X-GitHub-Event and X-GitHub-Delivery are required")
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # GitHub's other content type: the JSON is the `payload` field (signed as sent).
        fields = parse_qs(body.decode("latin-1"), max_num_fields=8)
        if len(fields.get("payload", [])) != 1:
            raise Rejected(400, "a form-encoded delivery needs one payload field")
        body = fields["payload"][0].encode()
    _object(body)
    if event == "ping":  # sent once when the webhook is created: answered, not stored
        return delivery, b""
    return delivery, envelope_bytes(delivery, "github", event, body)


def _gitlab(request: Request, body: bytes, secret: str) -> tuple[str, bytes]:
    if not signatures.gitlab_valid(request.headers.get("x-gitlab-token"), secret):
        raise Rejected(401, "missing or wrong X-Gitlab-Token")
    payload = _object(body)
    kind = payload.get("object_kind")
    if not isinstance(kind, str) or not kind:
        raise Rejected(400, "the body has no object_kind")
    delivery = request.headers.get("x-gitlab-event-uuid") or _content_id("gitlab", body)
    return delivery, envelope_bytes(delivery, "gitlab", kind, body)


def _pagerduty(request: Request, body: bytes, secret: str) -> tuple[str, bytes]:
    if not signatures.pagerduty_valid(body, request.headers.get("x-pagerduty-signature"), secret):
        raise Rejected(401, "missing or wrong X-PagerDuty-Signature")
    event = _object(body).get("event")
    if not isinstance(event, dict) or not event.get("id") or not event.get("event_type"):
        raise Rejected(400, "the body has no event.id and event.event_type")
    delivery = str(event["id"])
    return delivery, envelope_bytes(delivery, "pagerduty", str(event["event_type"]), body)


def _health(request: Request, body: bytes, secret: str) -> tuple[str, bytes]:
    if not signatures.bearer_valid(request.headers.get("authorization"), secret):
        raise Rejected(401, "missing or wrong bearer token")
    payload = _parse(body)
    samples = payload if isinstance(payload, list) else [payload]
    if not samples or not all(isinstance(s, dict) for s in samples):
        raise Rejected(400, "expected a health sample object or a list of them")
    key = request.headers.get("idempotency-key")
    deliveries, lines = [], []
    for i, sample in enumerate(samples):
        raw = json.dumps(sample, separators=(",", ":"), ensure_ascii=False).encode()
        deliveries.append(f"{key}:{i}" if key else _content_id("health", raw))
        lines.append(envelope_bytes(deliveries[-1], "metrics", "health_sample", raw))
    return deliveries[0] if len(
        deliveries
    ) == 1 else f"{deliveries[0]} (+{len(lines) - 1})", b"".join(lines)


READERS: dict[str, tuple[str, Callable]] = {
    "/webhooks/github": ("github", _github),
    "/webhooks/gitlab": ("gitlab", _gitlab),
    "/webhooks/pagerduty": ("pagerduty", _pagerduty),
    "/ingest/health": ("metrics", _health),
}


def create_app(settings: ReceiverSettings) -> Starlette:
    settings.landing.mkdir(parents=True, exist_ok=True)
    writer = LandingWriter(settings.landing, settings.rotate_bytes, settings.rotate_seconds)
    gates = GateCache(settings.home)

    async def receive(request: Request) -> JSONResponse:
        source, read = READERS[request.url.path]
        request.state.source = source
        secret = settings.secrets.get(source)
        try:
            if not secret:
                raise Rejected(503, f"{SECRET_ENV[source]} is not set: {source} events are refused")
            body = await _body(request, settings.max_body_bytes)
            delivery, lines = read(request, body, secret)
        except Rejected as rejected:
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
        request.state.delivery_id = delivery
        if lines and settings.durable:
            try:
                await writer.append(lines)
            except OSError as exc:
                return JSONResponse({"error": f"not stored: {exc.strerror}"}, status_code=507)
        review = None
        if source == "github" and request.headers.get("x-github-event") == PROTECTION_EVENT:
            review = BackgroundTask(_review_deployment, settings, gates, json.loads(body))
        return JSONResponse({"accepted": delivery}, status_code=202, background=review)

    async def gate(request: Request) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        request.state.source = "gate"
        try:
            if not settings.gate_token:
                raise Rejected(503, f"{GATE_TOKEN_ENV} is not set: the gate is closed over HTTP")
            if not signatures.bearer_valid(
                request.headers.get("authorization"), settings.gate_token
            ):
                raise Rejected(401, "missing or wrong bearer token")
            asked = _object(await _body(request, 64 * 1024))
            service, sha = asked.get("service"), asked.get("sha")
            environment = asked.get("environment", "production")
            if not all(isinstance(v, str) and v.strip() for v in (service, sha, environment)):
                raise Rejected(400, "give service and sha (and environment) as non-empty strings")
        except Rejected as rejected:
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
        verdict = await run_in_threadpool(
            _ask_gate, settings.home, gates, service.strip(), sha.strip(), environment.strip()
        )
        request.state.delivery_id = verdict.gate_id
        return JSONResponse(verdict.as_dict() | {"exit_code": verdict.exit_code})

    async def healthz(request: Request) -> JSONResponse:
        probe = settings.landing / f".healthz-{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
            writable = True
        except OSError:
            writable = False
        free = shutil.disk_usage(settings.landing).free
        healthy = writable and free >= settings.min_free_bytes
        return JSONResponse(
            {
                "status": "ok" if healthy else "unhealthy",
                "landing": str(settings.landing),
                "landing_writable": writable,
                "free_bytes": free,
                "min_free_bytes": settings.min_free_bytes,
                "sources_configured": sorted(settings.secrets),
            },
            status_code=200 if healthy else 503,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        recovered = recover_parts(settings.landing)
        if recovered:
            logging.getLogger("dcicd.receiver").info(
                "published %d file(s) a stopped receiver left behind", len(recovered)
            )
        rotation = asyncio.create_task(_rotate_periodically(writer))
        flushing = asyncio.create_task(_flush_gates_periodically(settings, gates))
        if settings.gate_token or settings.github_token:
            await asyncio.to_thread(gates.load)
            gates.start()
        yield
        gates.stop()
        rotation.cancel()
        flushing.cancel()
        await writer.close()  # in-flight requests are done: publish the current file
        await asyncio.to_thread(_flush_gates, settings, gates)

    routes = [Route(path, receive, methods=["POST"]) for path in READERS]
    routes.append(Route("/healthz", healthz, methods=["GET"]))
    routes.append(Route("/gate", gate, methods=["POST"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.writer = writer
    return AccessLog(app)


PROTECTION_EVENT = "deployment_protection_rule"
gate_log = logging.getLogger("dcicd.receiver.gate")


def _ask_gate(home: Path, cache, service: str, sha: str, environment: str):
    from dcicd_platform.gate.ask import ask

    return ask(home, service, sha, environment, asked_by="http", facts_from=cache.facts)


def _review_deployment(settings: ReceiverSettings, cache, payload: dict) -> None:
    """Decide on a deployment protection rule and answer GitHub (after the 202)."""
    from dcicd_platform.gate.ask import current_config
    from dcicd_platform.gate.protection import answer

    try:
        review = answer(
            settings.home, payload, settings.github_token, current_config(), cache.facts
        )
    except Exception:  # the receiver goes on; the log says what failed
        gate_log.exception("could not answer a deployment protection rule")
        return
    gate_log.info(
        json.dumps(
            {
                "event": PROTECTION_EVENT,
                "gate_id": review.verdict.gate_id if review.verdict else None,
                "state": review.state,
                "callback_status": review.status,
                "detail": review.detail[:200],
            }
        )
    )


def _flush_gates(settings: ReceiverSettings, cache: GateCache) -> None:
    from dcicd_platform.gate.audit import flush

    try:
        flush(settings.home, settings.home / "warehouse.duckdb", cache.own_write)
    except Exception:  # a failed flush leaves the journal for the next one
        gate_log.exception("could not write the gate journal into ops.gates")


async def _flush_gates_periodically(settings: ReceiverSettings, cache: GateCache) -> None:
    while True:
        await asyncio.sleep(settings.flush_seconds)
        await asyncio.to_thread(_flush_gates, settings, cache)


async def _rotate_periodically(writer: LandingWriter) -> None:
    while True:
        await asyncio.sleep(min(1.0, writer.max_age_s))
        await writer.rotate_when_due()


class AccessLog:
    """One JSON line per request: who, what, the answer and how long; never a body or header."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_note(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            state = scope.get("state", {})
            access_log.info(
                json.dumps(
                    {
                        "ts": rfc3339(datetime.now(UTC)),
                        "client": (scope.get("client") or ("", 0))[0],
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status["code"],
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "source": state.get("source"),
                        "delivery_id": state.get("delivery_id"),
                    }
                )
            )
