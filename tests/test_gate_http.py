"""The gate over HTTP on a real `dcicd serve` process: `POST /gate` with and without its token,
and GitHub's deployment protection rule answered end to end against a recording server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import jsonschema
import pytest
import referencing

from tests.gate_world import CANDIDATE, PROBLEMS, REPO, SERVICE, make_home
from tests.receiver_client import SECRETS, github_request, send, start_receiver
from tests.recording_server import RecordingServer

FIXTURES = Path(__file__).parent / "fixtures" / "github"
GATE_TOKEN = "gate-test-token"
GITHUB_TOKEN = "ghs_installation-test-token"


def gate_request(body: dict, token: str | None = GATE_TOKEN):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return "/gate", json.dumps(body).encode(), headers


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """Start a receiver on a hand-worked home with the gate configured as told."""
    started = []

    def start(*problems: str, mode: str = "enforce", secrets: dict | None = None, **gate):
        config = tmp_path / "dcicd.yaml"
        service = {"name": SERVICE, "repositories": [REPO]}  # GitHub names the repository
        config.write_text(json.dumps({"services": [service], "gate": {"mode": mode, **gate}}))
        monkeypatch.setenv("DCICD_CONFIG", str(config))
        home = make_home(tmp_path / f"home{len(started)}", *problems)
        receiver = start_receiver(home, secrets=SECRETS | (secrets or {}))
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        if receiver.process.poll() is None:
            receiver.kill()


def gates_rows(home: Path, expected: int, timeout: float = 20) -> list[tuple]:
    """ops.gates once the receiver has flushed its journal into it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
            try:
                rows = conn.execute(
                    "SELECT gate_id, verdict, asked_by, environment FROM ops.gates"
                    " ORDER BY asked_at"
                ).fetchall()
            finally:
                conn.close()
            if len(rows) >= expected:
                return rows
        except duckdb.Error:
            pass  # not there yet, or the receiver is writing it
        assert time.monotonic() < deadline, f"ops.gates has not {expected} rows"
        time.sleep(0.2)


def test_gate_over_http_needs_its_token(serve):
    receiver = serve(PROBLEMS["workflows"], secrets={"DCICD_GATE_TOKEN": GATE_TOKEN})
    conn = receiver.connection()
    asked = {"service": SERVICE, "sha": CANDIDATE}
    assert send(conn, gate_request(asked, token=None))[0] == 401
    assert send(conn, gate_request(asked, token="wrong"))[0] == 401
    assert send(conn, gate_request({"service": SERVICE}))[0] == 400
    for empty in ("", "  "):  # refused, and not recorded in ops.gates (two rows below)
        status, refused = send(conn, gate_request({"service": SERVICE, "sha": empty}))
        assert status == 400 and "sha" in refused["error"]
    status, answer = send(conn, gate_request(asked | {"environment": "production"}))
    assert status == 200
    assert (answer["verdict"], answer["exit_code"], answer["mode"]) == ("no-go", 1, "enforce")
    assert [r["rule"] for r in answer["reasons"] if r["status"] == "fail"] == ["workflows"]
    status, unknown = send(conn, gate_request({"service": SERVICE, "sha": "f00"}))
    assert (status, unknown["verdict"], unknown["exit_code"]) == (200, "undecided", 2)
    conn.close()
    rows = gates_rows(receiver.home, 2)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (answer["gate_id"], "no-go", "http"),
        (unknown["gate_id"], "undecided", "http"),
    ]
    assert receiver.stop() == 0


def test_without_a_token_configured_the_gate_is_closed(serve):
    receiver = serve(secrets={"DCICD_GATE_TOKEN": ""})
    conn = receiver.connection()
    status, answer = send(conn, gate_request({"service": SERVICE, "sha": CANDIDATE}))
    assert status == 503 and "DCICD_GATE_TOKEN" in answer["error"]
    conn.close()


def protection_rule_payload(callback_url: str, environment: str = "production") -> dict:
    """GitHub's `deployment_protection_rule` (requested), derived from the published deployment
    example: its deployment (at the candidate sha), repository, sender and installation."""
    published = json.loads((FIXTURES / "deployment" / "with-installation.payload.json").read_text())
    deployment = published["deployment"] | {"sha": CANDIDATE, "environment": environment}
    repository = published["repository"] | {"full_name": REPO}
    payload = {
        "action": "requested",
        "environment": environment,
        "event": "push",
        "deployment_callback_url": callback_url,
        "deployment": deployment,
        "repository": repository,
        "sender": published["sender"],
        "installation": published["installation"],
    }
    schemas = [json.loads(p.read_text()) for p in (FIXTURES / "schemas").rglob("*.json")]
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s, referencing.jsonschema.DRAFT7))
        for s in schemas
    )
    schema = next(s for s in schemas if s["$id"] == "deployment_protection_rule$requested")
    jsonschema.Draft7Validator(schema, registry=registry).validate(payload)
    return payload


@pytest.mark.parametrize(
    "problems,mode,state",
    [
        ((), "enforce", "approved"),
        ((PROBLEMS["open_anomaly"], PROBLEMS["change_size"]), "enforce", "rejected"),
        ((PROBLEMS["open_anomaly"],), "shadow", "approved"),
    ],
)
def test_deployment_protection_rule_end_to_end(serve, problems, mode, state):
    github = RecordingServer([(204, 0.0)])
    try:
        receiver = serve(
            *problems,
            mode=mode,
            secrets={"DCICD_GITHUB_TOKEN": GITHUB_TOKEN},
            github_api_url=github.url,
        )
        callback = f"{github.url}/repos/acme/payments/actions/runs/42/deployment_protection_rule"
        body = json.dumps(protection_rule_payload(callback)).encode()
        conn = receiver.connection()
        status, answer = send(conn, github_request(body, "deployment_protection_rule"))
        conn.close()
        assert status == 202, answer
        deadline = time.monotonic() + 20
        while not github.requests:
            assert time.monotonic() < deadline, receiver.log()
            time.sleep(0.05)
        (review,) = github.requests
        assert review["path"] == "/repos/acme/payments/actions/runs/42/deployment_protection_rule"
        assert review["headers"]["Authorization"] == f"Bearer {GITHUB_TOKEN}"
        assert review["body"]["environment_name"] == "production"
        assert review["body"]["state"] == state
        comment = review["body"]["comment"]
        assert comment.startswith(f"dcicd gate: {'go' if state == 'approved' else 'no-go'}")
        failing = ["open_anomaly", "change_size"][: len(problems)]
        assert [line.split(":")[0] for line in comment.splitlines() if line.startswith("FAIL")] == [
            f"FAIL {rule}" for rule in failing
        ]
        (row,) = gates_rows(receiver.home, 1)
        assert row[2] == "github:deployment_protection_rule"
        # The delivery itself is stored like any other.
        assert receiver.stop() == 0
        stored = [json.loads(line) for p in receiver.landing.glob("*.ndjson") for line in p.open()]
        assert [e["event_type"] for e in stored] == ["deployment_protection_rule"]
    finally:
        github.close()


def test_the_token_goes_only_to_the_configured_api(serve):
    github = RecordingServer([(204, 0.0)])
    try:
        receiver = serve(secrets={"DCICD_GITHUB_TOKEN": GITHUB_TOKEN})  # api.github.com
        callback = f"{github.url}/repos/acme/payments/actions/runs/42/deployment_protection_rule"
        body = json.dumps(protection_rule_payload(callback)).encode()
        conn = receiver.connection()
        assert send(conn, github_request(body, "deployment_protection_rule"))[0] == 202
        conn.close()
        gates_rows(receiver.home, 1)  # decided and audited ...
        assert receiver.stop() == 0
        assert github.requests == []  # ... but not sent
        assert "is not under https://api.github.com/: not sent" in receiver.log()
    finally:
        github.close()


def readme_ci_snippets() -> dict[str, str]:
    """The GitHub Actions step's `run` and the GitLab CI job's `script`, from the README."""
    import re

    import yaml

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Promotion gate: `dcicd gate`")[1].split("\n## ")[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    github = next(yaml.safe_load(b) for b in blocks if "name: Promotion gate" in b)
    gitlab = next(yaml.safe_load(b) for b in blocks if "promotion-gate:" in b)
    step = github[0]["run"]
    step = step.replace("${{ github.repository }}", "$GITHUB_REPOSITORY")
    step = step.replace("${{ github.sha }}", "$GITHUB_SHA")
    script = gitlab["promotion-gate"]["script"]
    return {"github": step, "gitlab": "\n".join(line for line in script if "apk add" not in line)}


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="the CI snippets need curl and jq"
)
def test_the_readmes_ci_snippets_pass_on_go_and_fail_otherwise(serve):
    receiver = serve(PROBLEMS["failure_risk"], secrets={"DCICD_GATE_TOKEN": GATE_TOKEN})
    env = {
        "PATH": os.environ["PATH"],
        "DCICD_URL": f"http://127.0.0.1:{receiver.port}",
        "DCICD_GATE_TOKEN": GATE_TOKEN,
        "GITHUB_REPOSITORY": REPO,
        "CI_PROJECT_PATH": REPO,
    }
    for ci, script in readme_ci_snippets().items():
        # GitHub runs `run` with bash -e; GitLab runs the script's lines in one shell.
        shell = ["bash", "-e", "-c"] if ci == "github" else ["sh", "-c"]
        outcomes = {}
        for sha in ("c2", CANDIDATE, "f00"):
            done = subprocess.run(
                [*shell, script],
                env=env | {"GITHUB_SHA": sha, "CI_COMMIT_SHA": sha},
                capture_output=True,
                text=True,
            )
            outcomes[sha] = (done.returncode, done.stdout.splitlines()[0])
        assert outcomes == {
            "c2": (0, "go (enforce)"),
            CANDIDATE: (1, "no-go (enforce)"),
            "f00": (2, "undecided (enforce)"),
        }, ci
        refused = subprocess.run(
            [*shell, script],
            env=env | {"DCICD_GATE_TOKEN": "wrong", "GITHUB_SHA": "c2", "CI_COMMIT_SHA": "c2"},
            capture_output=True,
            text=True,
        )
        assert refused.returncode != 0 and "the gate did not answer" in refused.stdout


def test_the_receiver_sees_a_change_of_the_warehouse_within_seconds(serve):
    receiver = serve(secrets={"DCICD_GATE_TOKEN": GATE_TOKEN})
    conn = receiver.connection()
    asked = gate_request({"service": SERVICE, "sha": CANDIDATE})
    assert send(conn, asked)[1]["verdict"] == "go"
    deadline = time.monotonic() + 20
    while True:  # the automation rolls the service back (the receiver may be reading: retry)
        try:
            writer = duckdb.connect(str(receiver.home / "warehouse.duckdb"))
            break
        except duckdb.IOException:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    try:
        writer.execute(PROBLEMS["recent_rollback"])
        writer.execute(  # an hour ago (the receiver's gate asks at the wall clock's now)
            "UPDATE ops.actions SET requested_at = now() - INTERVAL 1 HOUR,"
            " finished_at = now() - INTERVAL 1 HOUR"
        )
    finally:
        writer.close()
    changed = time.monotonic()
    while (answer := send(conn, asked)[1])["verdict"] != "no-go":
        assert time.monotonic() - changed < 10, answer
        time.sleep(0.05)
    seen_after = time.monotonic() - changed
    assert [r["rule"] for r in answer["reasons"] if r["status"] == "fail"] == ["recent_rollback"]
    assert seen_after < 5
    conn.close()
