"""`dcicd serve`: a real receiver process on 127.0.0.1, the providers' published payloads."""

import hashlib
import hmac
import json
import uuid
from pathlib import Path

import duckdb
import pytest

from dcicd_platform.ingest.loader import load_files
from dcicd_platform.receiver import signatures
from tests.receiver_client import (
    SECRETS,
    github_request,
    landed_lines,
    run_load,
    send,
    start_receiver,
)

FIXTURES = Path(__file__).parent / "fixtures"
GITHUB = sorted((FIXTURES / "github").glob("*/*.json"))
GITLAB = sorted((FIXTURES / "gitlab").glob("*.json"))
PAGERDUTY_SECRET = "HvPtlQNKMPpHSSqJpCdndXfo7HnGXa1pnH6w5axpxLFn9aRBNBGh4e8/HlonK5mz"


def pagerduty_signatures() -> dict[str, str]:
    lines = (FIXTURES / "pagerduty" / "SIGNATURES.tsv").read_text().splitlines()
    return dict(line.split("\t") for line in lines if not line.startswith(("#", "file\t")))


def gitlab_request(body: bytes, token: str = SECRETS["DCICD_GITLAB_WEBHOOK_TOKEN"]):
    headers = {"X-Gitlab-Token": token, "X-Gitlab-Event-UUID": str(uuid.uuid4())}
    return "/webhooks/gitlab", body, headers


def pagerduty_request(body: bytes, signature: str):
    return "/webhooks/pagerduty", body, {"X-PagerDuty-Signature": signature}


def pd_sign(body: bytes, secret: str = SECRETS["DCICD_PAGERDUTY_WEBHOOK_SECRET"]) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def loaded(tmp_path: Path, landing: Path):
    """Load every published landing file into a fresh warehouse: (reports, connection)."""
    conn = duckdb.connect(str(tmp_path / "check.duckdb"))
    reports = load_files(conn, sorted(landing.glob("*.ndjson")))
    return reports, conn


@pytest.fixture
def receiver(tmp_path):
    server = start_receiver(tmp_path / "home")
    yield server
    if server.process.poll() is None:
        server.kill()


# --- signatures, unit by unit, against published examples ----------------------------------


def test_github_signature_matches_githubs_documented_example():
    # docs.github.com, "Validating webhook deliveries": secret and payload and their signature.
    body, secret = b"Hello, World!", "It's a Secret to Everybody"
    good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signatures.github_valid(body, good, secret)
    assert not signatures.github_valid(body + b" ", good, secret)
    assert not signatures.github_valid(body, good.replace("sha256=", "sha1="), secret)
    assert not signatures.github_valid(body, None, secret)


@pytest.mark.parametrize("name,signature", sorted(pagerduty_signatures().items()))
def test_pagerduty_published_signatures_verify(name, signature):
    body = (FIXTURES / "pagerduty" / name).read_bytes()
    assert signatures.pagerduty_valid(body, signature, PAGERDUTY_SECRET)
    # During a secret rotation PagerDuty sends several; one match is enough.
    assert signatures.pagerduty_valid(body, f"v1={'0' * 64},{signature}", PAGERDUTY_SECRET)
    assert not signatures.pagerduty_valid(body, f"v1={'0' * 64}", PAGERDUTY_SECRET)
    assert not signatures.pagerduty_valid(body[:-1], signature, PAGERDUTY_SECRET)


# --- the server ----------------------------------------------------------------------------


def test_every_provider_fixture_is_accepted_landed_and_loads(receiver, tmp_path):
    conn = receiver.connection()
    sent = {}
    for path in GITHUB:
        request = github_request(path.read_bytes(), path.parent.name)
        status, answer = send(conn, request)
        assert status == 202, (path, answer)
        sent[request[2]["X-GitHub-Delivery"]] = json.loads(path.read_bytes())
    for path in GITLAB:
        request = gitlab_request(path.read_bytes())
        assert send(conn, request)[0] == 202, path
        sent[request[2]["X-Gitlab-Event-UUID"]] = json.loads(path.read_bytes())
    for name in pagerduty_signatures():
        body = (FIXTURES / "pagerduty" / name).read_bytes()
        status, answer = send(conn, pagerduty_request(body, pd_sign(body)))
        assert status == 202, (name, answer)
        sent[answer["accepted"]] = json.loads(body)
    conn.close()
    assert receiver.stop() == 0
    assert not list(receiver.landing.glob(".*part")), "shutdown publishes the current file"
    reports, warehouse = loaded(tmp_path, receiver.landing)
    assert sum(r.quarantined for r in reports) == 0
    assert sum(r.loaded for r in reports) == len(sent)
    stored = dict(
        warehouse.execute("SELECT delivery_id, payload::VARCHAR FROM raw.events").fetchall()
    )
    assert {k: json.loads(v) for k, v in stored.items()} == sent  # the payload, unchanged


def test_a_form_encoded_github_delivery_is_read_from_its_payload_field(receiver, tmp_path):
    from urllib.parse import urlencode

    payload = (FIXTURES / "github/push/with-no-username-committer.payload.json").read_bytes()
    body = urlencode({"payload": payload.decode()}).encode()
    path, body, headers = github_request(body, "push", delivery="form-delivery")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = receiver.connection()
    assert send(conn, (path, body, headers))[0] == 202
    conn.close()
    receiver.stop()
    _, warehouse = loaded(tmp_path, receiver.landing)
    stored = warehouse.execute("SELECT payload::VARCHAR FROM raw.events").fetchone()[0]
    assert json.loads(stored) == json.loads(payload)


def test_pagerduty_published_deliveries_are_accepted_with_their_own_signatures(tmp_path):
    server = start_receiver(
        tmp_path / "home", secrets={"DCICD_PAGERDUTY_WEBHOOK_SECRET": PAGERDUTY_SECRET}
    )
    try:
        conn = server.connection()
        for name, signature in pagerduty_signatures().items():
            body = (FIXTURES / "pagerduty" / name).read_bytes()
            assert send(conn, pagerduty_request(body, signature))[0] == 202, name
            assert send(conn, pagerduty_request(body + b" ", signature))[0] == 401, name
        conn.close()
    finally:
        server.stop()
    assert len(landed_lines(server.landing)) == len(pagerduty_signatures())


def test_bad_or_missing_signatures_are_refused_and_nothing_is_written(receiver):
    body = (FIXTURES / "github/workflow_run/completed.payload.json").read_bytes()
    gitlab = (FIXTURES / "gitlab/pipeline.json").read_bytes()
    pagerduty = (FIXTURES / "pagerduty/triggered_v3.json").read_bytes()
    path, _, headers = github_request(body, "workflow_run")
    refused = [
        github_request(body, "workflow_run", secret="wrong"),
        (path, body, {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}),
        (path, body + b"\n", headers),  # the body changed after signing
        gitlab_request(gitlab, token="wrong"),
        ("/webhooks/gitlab", gitlab, {}),
        pagerduty_request(pagerduty, pd_sign(pagerduty, "wrong")),
        pagerduty_request(pagerduty, ""),
        ("/ingest/health", b'{"service": "x"}', {"Authorization": "Bearer wrong"}),
        ("/ingest/health", b'{"service": "x"}', {}),
    ]
    conn = receiver.connection()
    for request in refused:
        status, answer = send(conn, request)
        assert status == 401, (request[0], answer)
        assert "error" in answer
    conn.close()
    receiver.stop()
    assert list(receiver.landing.iterdir()) == []


def test_malformed_json_is_400_and_written_nowhere(receiver):
    conn = receiver.connection()
    for body in [b'{"action": "completed"', b"\xff\xfe{}", b"[1, 2]", b""]:
        status, answer = send(conn, github_request(body, "workflow_run"))
        assert status == 400, (body, answer)
    # GitLab without object_kind, PagerDuty without event.id: nothing names the event.
    assert send(conn, gitlab_request(b'{"a": 1}'))[0] == 400
    assert send(conn, pagerduty_request(b'{"event": {}}', pd_sign(b'{"event": {}}')))[0] == 400
    conn.close()
    receiver.stop()
    assert list(receiver.landing.iterdir()) == []


def test_a_source_without_a_secret_answers_503(tmp_path):
    only_github = {"DCICD_GITHUB_WEBHOOK_SECRET": SECRETS["DCICD_GITHUB_WEBHOOK_SECRET"]}
    server = start_receiver(tmp_path / "home", secrets=only_github)
    try:
        conn = server.connection()
        body = (FIXTURES / "gitlab/pipeline.json").read_bytes()
        status, answer = send(conn, gitlab_request(body))
        assert status == 503 and "DCICD_GITLAB_WEBHOOK_TOKEN" in answer["error"]
        assert send(conn, ("/ingest/health", b"{}", {"Authorization": "Bearer "}))[0] == 503
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        assert health["sources_configured"] == ["github"]
        conn.close()
    finally:
        server.stop()
    assert list(server.landing.iterdir()) == []


def test_a_body_over_the_limit_is_413(tmp_path):
    server = start_receiver(tmp_path / "home", "--max-body-mb", "0.01")
    try:
        conn = server.connection()
        big = json.dumps({"x": "y" * 20_000}).encode()
        assert send(conn, github_request(big, "push"))[0] == 413
        conn.close()
        # Without a Content-Length (chunked), the limit holds while reading.
        conn = server.connection()
        path, body, headers = github_request(big, "push")
        conn.putrequest("POST", path)
        for k, v in (headers | {"Transfer-Encoding": "chunked"}).items():
            conn.putheader(k, v)
        conn.endheaders()
        for i in range(0, len(body), 4096):
            piece = body[i : i + 4096]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 413
        conn.close()
    finally:
        server.stop()
    assert list(server.landing.iterdir()) == []


def test_githubs_ping_is_answered_and_not_stored(receiver):
    conn = receiver.connection()
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    assert send(conn, github_request(ping, "ping"))[0] == 202
    assert send(conn, github_request(ping, "ping", secret="wrong"))[0] == 401
    conn.close()
    receiver.stop()
    assert list(receiver.landing.iterdir()) == []


def test_a_repeated_delivery_is_accepted_and_deduplicated_by_ingestion(receiver, tmp_path):
    body = (FIXTURES / "github/workflow_job/queued.payload.json").read_bytes()
    request = github_request(body, "workflow_job", delivery="retried-delivery")
    conn = receiver.connection()
    assert [send(conn, request)[0] for _ in range(3)] == [202, 202, 202]
    conn.close()
    receiver.stop()
    reports, _ = loaded(tmp_path, receiver.landing)
    assert (sum(r.loaded for r in reports), sum(r.duplicates for r in reports)) == (1, 2)


def test_health_samples_with_a_bearer_token(receiver, tmp_path):
    samples = [
        {
            "service": "checkout",
            "environment": "production",
            "ts": "2026-03-02T10:00:00Z",
            "requests": 1200,
            "errors": 3,
            "latency_p95_ms": 180.5,
        },
        {
            "service": "checkout",
            "environment": "production",
            "ts": "2026-03-02T10:01:00Z",
            "requests": 1180,
            "errors": 40,
            "latency_p95_ms": 420.0,
        },
    ]
    auth = {"Authorization": f"Bearer {SECRETS['DCICD_HEALTH_TOKEN']}"}
    conn = receiver.connection()
    assert send(conn, ("/ingest/health", json.dumps(samples).encode(), auth))[0] == 202
    assert send(conn, ("/ingest/health", json.dumps(samples[0]).encode(), auth))[0] == 202
    conn.close()
    receiver.stop()
    reports, warehouse = loaded(tmp_path, receiver.landing)
    # The single sample repeats the first of the list: same content, same delivery id.
    assert (sum(r.loaded for r in reports), sum(r.duplicates for r in reports)) == (2, 1)
    assert warehouse.execute("SELECT DISTINCT source, event_type FROM raw.events").fetchall() == [
        ("metrics", "health_sample")
    ]


def test_healthz_reports_the_landing_folder(receiver):
    conn = receiver.connection()
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    health = json.loads(response.read())
    conn.close()
    assert response.status == 200
    assert health["landing_writable"] is True and health["free_bytes"] > 0
    assert Path(health["landing"]) == receiver.landing


def test_access_log_is_json_without_payloads_or_secrets(receiver):
    body = (FIXTURES / "github/workflow_run/completed.payload.json").read_bytes()
    conn = receiver.connection()
    send(conn, github_request(body, "workflow_run", delivery="logged-delivery"))
    send(conn, github_request(body, "workflow_run", secret="wrong"))
    conn.close()
    receiver.stop()
    entries = [json.loads(line) for line in receiver.log().splitlines() if line.startswith("{")]
    by_status = {e["status"]: e for e in entries if e["path"] == "/webhooks/github"}
    assert by_status[202]["delivery_id"] == "logged-delivery"
    assert by_status[202]["source"] == "github" and by_status[202]["ms"] >= 0
    assert 401 in by_status
    text = receiver.log()
    assert "gh-test-secret" not in text and "Codertocat" not in text  # no secret, no payload
    assert "Codertocat" in body.decode()  # (the payload does hold it)


def test_files_rotate_by_size_into_complete_published_files(tmp_path):
    server = start_receiver(tmp_path / "home", "--rotate-mb", "0.02")
    try:
        body = (FIXTURES / "github/workflow_job/queued.payload.json").read_bytes()
        result = run_load(server.port, [body], clients=4, per_client=25)
        assert len(result.accepted) == 100
        published = sorted(server.landing.glob("*.ndjson"))
        assert len(published) >= 3  # while it runs, files are published as they fill
        for path in published:
            assert path.read_bytes().endswith(b"\n")
    finally:
        server.stop()
    lines = landed_lines(server.landing)
    assert sorted(json.loads(line)["delivery_id"] for line in lines) == sorted(result.accepted)


def test_a_quiet_receiver_publishes_its_file_once_it_is_old_enough(tmp_path):
    import time

    server = start_receiver(tmp_path / "home", "--rotate-seconds", "0.5")
    try:
        body = (FIXTURES / "github/workflow_job/queued.payload.json").read_bytes()
        conn = server.connection()
        assert send(conn, github_request(body, "workflow_job", delivery="quiet"))[0] == 202
        conn.close()
        deadline = time.monotonic() + 10
        while not list(server.landing.glob("*.ndjson")) and time.monotonic() < deadline:
            time.sleep(0.1)
        published = list(server.landing.glob("*.ndjson"))  # while the receiver still runs
        assert len(published) == 1 and server.process.poll() is None
        assert json.loads(published[0].read_bytes())["delivery_id"] == "quiet"
    finally:
        server.stop()


def test_load_every_acknowledged_delivery_is_landed_exactly_once(receiver, tmp_path):
    bodies = [p.read_bytes() for p in GITHUB if p.parent.name == "workflow_job"]
    result = run_load(receiver.port, bodies, clients=32, per_client=625)
    assert result.errors == 0
    assert len(result.accepted) == 20_000
    assert receiver.stop() == 0
    landed = [json.loads(line)["delivery_id"] for line in landed_lines(receiver.landing)]
    assert sorted(landed) == sorted(result.accepted)  # each once, and nothing else


def test_sigkill_mid_load_loses_no_acknowledged_delivery(receiver, tmp_path):
    import threading

    bodies = [p.read_bytes() for p in GITHUB if p.parent.name == "workflow_job"]
    killer = threading.Timer(1.5, receiver.kill)
    killer.start()
    result = run_load(receiver.port, bodies, clients=32, per_client=100_000)
    killer.join()
    assert result.errors > 0 and len(result.accepted) > 100  # it was killed mid-load
    # The next receiver on this landing folder publishes what the killed one left.
    again = start_receiver(receiver.home)
    again.stop()
    assert not list(receiver.landing.glob(".*part"))
    lines = landed_lines(receiver.landing)
    assert all(line.endswith(b"\n") for line in lines)  # no partial line
    landed = [json.loads(line)["delivery_id"] for line in lines]
    assert len(landed) == len(set(landed))
    assert set(result.accepted) <= set(landed)  # every acknowledged delivery is there
    reports, _ = loaded(tmp_path, receiver.landing)
    assert sum(r.quarantined for r in reports) == 0


def test_graceful_stop_finishes_in_flight_requests_and_publishes(receiver):
    import threading

    bodies = [p.read_bytes() for p in GITHUB if p.parent.name == "workflow_job"]
    stopper = threading.Timer(1.0, lambda: receiver.process.send_signal(15))
    stopper.start()
    result = run_load(receiver.port, bodies, clients=8, per_client=100_000)
    stopper.join()
    assert receiver.process.wait(30) == 0
    assert not list(receiver.landing.glob(".*part"))
    landed = {json.loads(line)["delivery_id"] for line in landed_lines(receiver.landing)}
    assert set(result.accepted) <= landed and len(result.accepted) > 100
