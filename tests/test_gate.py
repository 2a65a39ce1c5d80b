"""The promotion gate on hand-worked situations (tests/gate_world.py): each rule alone, several
together, shadow against enforce, no data; the command line and the audit in ops.gates."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from dcicd_platform.cli import main
from dcicd_platform.config import GATE_RULES, parse_config
from dcicd_platform.gate import audit
from dcicd_platform.gate.ask import ask, read, render_text
from dcicd_platform.gate.cache import GateCache
from tests.gate_world import CANDIDATE, IN_PRODUCTION, NOW, PROBLEMS, SERVICE, make_home


def config(mode: str = "enforce", **gate):
    text = json.dumps({"gate": {"mode": mode, **gate}})
    return parse_config(text)


def verdict_in(home: Path, sha: str = CANDIDATE, **kwargs):
    """The verdict, asked as `dcicd gate` asks; the receiver's index must say the same."""
    cfg = kwargs.pop("cfg", None) or config(**kwargs)
    answer = ask(home, SERVICE, sha, "production", config=cfg, now=NOW)
    cached = GateCache(home)
    from_cache = ask(home, SERVICE, sha, "production", config=cfg, now=NOW, facts_from=cached.facts)
    assert (from_cache.verdict, from_cache.reasons) == (answer.verdict, answer.reasons)
    return answer


def statuses(verdict) -> dict[str, str]:
    return {r.rule: r.status for r in verdict.reasons}


def test_the_baseline_passes_every_rule(tmp_path):
    verdict = verdict_in(make_home(tmp_path / "home"))
    assert verdict.verdict == "go" and verdict.exit_code == 0
    assert statuses(verdict) == dict.fromkeys(GATE_RULES, "pass")
    details = {r.rule: r.detail for r in verdict.reasons}
    assert details["change_size"].startswith("2 commits pushed since the sha in production")
    assert details["workflows"] == "2 green: ci, lint"
    assert "10%" in details["failure_risk"]  # ci's 1 - 0.90, the higher of the two
    assert "5.0%" in details["change_failure_rate"]


@pytest.mark.parametrize("rule", GATE_RULES)
def test_each_rule_alone_is_a_no_go(tmp_path, rule):
    verdict = verdict_in(make_home(tmp_path / "home", PROBLEMS[rule]))
    assert verdict.verdict == "no-go" and verdict.exit_code == 1
    assert [r.rule for r in verdict.reasons if r.status == "fail"] == [rule]
    # Left out of gate.rules, the same problem no longer blocks, and says so.
    others = [r for r in GATE_RULES if r != rule]
    relaxed = verdict_in(tmp_path / "home", rules=others)
    assert relaxed.verdict == "go"
    assert statuses(relaxed)[rule] == "not_applied"


def test_what_each_failing_rule_says(tmp_path):
    home = make_home(tmp_path / "home", *PROBLEMS.values())
    verdict = verdict_in(home)
    assert verdict.verdict == "no-go"
    assert statuses(verdict) == dict.fromkeys(GATE_RULES, "fail")
    said = {r.rule: r.detail for r in verdict.reasons}
    assert "critical deployment_health a1" in said["open_anomaly"]
    assert "until 2026-12-01 02:01Z" in said["recent_rollback"]
    assert "25.0%" in said["change_failure_rate"]
    assert said["workflows"] == "not green: ci: failure"  # the latest attempt counts
    assert "70%" in said["failure_risk"]
    assert said["change_size"].startswith("62 commits")
    text = render_text(verdict)
    assert text.splitlines()[0] == f"{SERVICE} @ {CANDIDATE} -> production: no-go"
    assert sum(line.lstrip().startswith("FAIL") for line in text.splitlines()) == 6


def test_shadow_always_goes_and_keeps_what_enforce_would_say(tmp_path):
    home = make_home(tmp_path / "home", PROBLEMS["open_anomaly"], PROBLEMS["workflows"])
    shadow = verdict_in(home, mode="shadow")
    enforce = verdict_in(home, mode="enforce")
    assert (shadow.verdict, shadow.enforced, shadow.exit_code) == ("go", "no-go", 0)
    assert (enforce.verdict, enforce.enforced, enforce.exit_code) == ("no-go", "no-go", 1)
    assert shadow.reasons == enforce.reasons
    assert "enforce would say no-go" in render_text(shadow)
    off = verdict_in(home, mode="off")
    assert (off.verdict, [r.rule for r in off.reasons]) == ("go", ["mode"])


def test_thresholds_are_configurable(tmp_path):
    home = make_home(tmp_path / "home", PROBLEMS["recent_rollback"])  # 10 h before NOW
    assert verdict_in(home, cooldown_hours=9).verdict == "go"
    assert verdict_in(home, cooldown_hours=11).verdict == "no-go"
    assert verdict_in(home, max_changes=1).verdict == "no-go"  # the 2 pending commits
    assert verdict_in(home, max_failure_risk=0.05).verdict == "no-go"  # ci's 10%
    assert verdict_in(home, cooldown_hours=0, anomaly_kinds=[]).verdict == "go"


def test_required_workflows_must_each_have_a_green_run(tmp_path):
    home = make_home(tmp_path / "home")
    assert verdict_in(home, required_workflows=["ci"]).verdict == "go"
    missing = verdict_in(home, required_workflows=["ci", "deploy-*"])
    assert missing.verdict == "no-go"
    assert (
        "deploy-*: no run on this sha" in {r.rule: r.detail for r in missing.reasons}["workflows"]
    )
    # A run still going is not green either.
    running = make_home(
        tmp_path / "running",
        "INSERT INTO core.pipeline_runs VALUES ('r3', 'acme/payments', 'payments', 'e2e',"
        " 'main', 'c4', 'in_progress', NULL, 1, '2026-11-30 11:50+00')",
    )
    assert (
        "e2e: in_progress" in {r.rule: r.detail for r in verdict_in(running).reasons}["workflows"]
    )


def test_only_recent_anomalies_or_the_live_deployments_block(tmp_path):
    old_on_live = PROBLEMS["open_anomaly"].replace("2026-11-30 11:00", "2026-11-20 11:00")
    assert verdict_in(make_home(tmp_path / "live", old_on_live)).verdict == "no-go"
    old_elsewhere = old_on_live.replace("'d1'", "'d0'")
    assert verdict_in(make_home(tmp_path / "old", old_elsewhere)).verdict == "go"
    cleared = PROBLEMS["open_anomaly"].replace("NULL)", "'2026-11-30 11:30+00')")
    assert verdict_in(make_home(tmp_path / "cleared", cleared)).verdict == "go"
    warning = PROBLEMS["open_anomaly"].replace("'critical'", "'warning'")
    assert verdict_in(make_home(tmp_path / "warning", warning)).verdict == "go"
    assert verdict_in(tmp_path / "warning", anomaly_severity="warning").verdict == "no-go"
    shadowed = PROBLEMS["recent_rollback"].replace("'executed'", "'shadow'")
    assert verdict_in(make_home(tmp_path / "shadow", shadowed)).verdict == "go"


def test_a_deployed_sha_counts_its_production_change_set(tmp_path):
    home = make_home(tmp_path / "home")
    verdict = verdict_in(home, sha=IN_PRODUCTION, max_changes=1)
    said = {r.rule: r.detail for r in verdict.reasons}
    assert said["change_size"].startswith("2 commits in its production deployment's change set")
    assert statuses(verdict)["change_size"] == "fail"
    assert said["workflows"] == "1 green: ci"


def test_no_data(tmp_path):
    # No warehouse at all, an empty one, a sha it has never seen: the gate cannot decide.
    nothing = verdict_in(tmp_path / "none")
    assert (nothing.verdict, nothing.exit_code) == ("undecided", 2)
    assert "cannot read the warehouse" in nothing.why_undecided
    empty = verdict_in(make_home(tmp_path / "empty", baseline=False))
    assert empty.verdict == "undecided" and "knows no service 'payments'" in empty.why_undecided
    unknown = verdict_in(make_home(tmp_path / "home"), sha="f00")
    assert unknown.verdict == "undecided" and unknown.reasons == []
    assert "knows nothing of f00 for payments" in unknown.why_undecided
    # A known sha under a service name the warehouse has never seen is no go either.
    stranger = ask(tmp_path / "home", "payment", CANDIDATE, config=config(), now=NOW)
    assert stranger.verdict == "undecided" and "no service 'payment'" in stranger.why_undecided
    # In shadow mode even that is a go; what enforce would say is kept.
    shadow = verdict_in(tmp_path / "home", sha="f00", mode="shadow")
    assert (shadow.verdict, shadow.enforced, shadow.exit_code) == ("go", "undecided", 0)
    # A sha only pushed (no run, no model, no scorecard yet): rules without data do not block.
    bare = make_home(
        tmp_path / "bare",
        "DELETE FROM core.pipeline_runs WHERE sha = 'c4'",
        "DROP TABLE ml.build_predictions",
        "DROP TABLE marts.kpi_scorecard",
        "DROP TABLE ml.anomalies",
        "DROP TABLE ops.actions",
    )
    verdict = verdict_in(bare)
    assert verdict.verdict == "go"
    assert statuses(verdict) == {
        "open_anomaly": "pass",
        "recent_rollback": "pass",
        "change_failure_rate": "no_data",
        "workflows": "no_data",
        "failure_risk": "no_data",
        "change_size": "pass",
    }


def gates_table(home: Path) -> list[dict]:
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        cursor = conn.execute("SELECT * FROM ops.gates ORDER BY asked_at")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()


def run_cli(tmp_path: Path, home: Path, *args: str, mode: str = "enforce"):
    (tmp_path / "dcicd.yaml").write_text(f"gate:\n  mode: {mode}\n")
    env = {"DCICD_HOME": str(home), "DCICD_CONFIG": str(tmp_path / "dcicd.yaml")}
    return CliRunner().invoke(main, ["gate", SERVICE, *args], env=env)


def test_the_command_line_exit_codes_formats_and_audit(tmp_path):
    home = make_home(tmp_path / "home", PROBLEMS["change_failure_rate"])
    no_go = run_cli(tmp_path, home, "--sha", CANDIDATE)
    assert no_go.exit_code == 1, no_go.output
    assert no_go.output.startswith(f"{SERVICE} @ {CANDIDATE} -> production: no-go\n")
    assert "FAIL change_failure_rate" in no_go.output
    go = run_cli(tmp_path, home, "--sha", CANDIDATE, "--format", "json", mode="shadow")
    assert go.exit_code == 0
    answer = json.loads(go.output)
    assert (answer["verdict"], answer["enforced"], answer["exit_code"]) == ("go", "no-go", 0)
    assert [r["rule"] for r in answer["reasons"]] == list(GATE_RULES)
    unknown = run_cli(tmp_path, home, "--sha", "f00", "--environment", "staging")
    assert unknown.exit_code == 2 and "cannot decide: the warehouse knows nothing" in unknown.output
    rows = gates_table(home)  # each verdict is in ops.gates when the command returns
    assert [(r["verdict"], r["enforced_verdict"], r["mode"]) for r in rows] == [
        ("no-go", "no-go", "enforce"),
        ("go", "no-go", "shadow"),
        ("undecided", "undecided", "enforce"),
    ]
    assert rows[1]["gate_id"] == answer["gate_id"]
    assert rows[2]["environment"] == "staging" and rows[2]["why_undecided"]
    assert json.loads(rows[0]["reasons"])[2]["status"] == "fail"
    assert not list((home / "gates").glob("*.ndjson"))


HOLD = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_verdict_given_while_a_writer_holds_the_warehouse_is_audited_later(tmp_path):
    home = make_home(tmp_path / "home")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home / "warehouse.duckdb"), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        verdict = ask(home, SERVICE, CANDIDATE, config=config(), now=NOW)
        # Locked and no snapshot yet: the gate cannot read, says so, and the verdict waits.
        assert verdict.verdict == "undecided" and "lock" in verdict.why_undecided.lower()
        assert audit.flush(home, home / "warehouse.duckdb") is None
        assert audit.pending(home) == 1
        # With a published snapshot the gate answers from it, and says so.
        snapshot = make_home(tmp_path / "snap")
        (snapshot / "warehouse.duckdb").rename(home / "warehouse.snapshot.duckdb")
        from_snapshot = read(
            home / "warehouse.duckdb", SERVICE, CANDIDATE, "production", NOW, config()
        )
        assert from_snapshot.source == "snapshot" and from_snapshot.unknown is None
        assert from_snapshot.runs and from_snapshot.unreadable is None
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while (written := audit.flush(home, home / "warehouse.duckdb")) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert written == 1 and audit.pending(home) == 0
    assert [r["gate_id"] for r in gates_table(home)] == [verdict.gate_id]


def test_without_a_warehouse_the_command_cannot_decide_and_keeps_the_verdict(tmp_path):
    result = run_cli(tmp_path, tmp_path / "home", "--sha", CANDIDATE)
    assert result.exit_code == 2
    assert "cannot decide: cannot read the warehouse: no warehouse at" in result.stdout
    assert "note: no warehouse yet; this verdict waits in" in result.stderr
    assert audit.pending(tmp_path / "home") == 1
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()  # the gate never makes one


def test_the_demo_prints_the_verdict_on_the_latest_deployments(tmp_path, monkeypatch, capsys):
    from dcicd_platform import screens
    from dcicd_platform.home import Home

    home = make_home(
        tmp_path / "home",
        "INSERT INTO core.deployments VALUES ('e1', 'search', 'acme/search', 'production', 's9',"
        " 'success', '2026-11-30 08:00+00', true), ('e0', 'search', 'acme/search', 'production',"
        " 's8', 'success', '2026-11-20 08:00+00', true)",
    )
    (tmp_path / "dcicd.yaml").write_text(
        "services:\n  - name: search\n    repositories: [acme/search]\n"
        "  - name: payments\n    repositories: [acme/payments]\ngate:\n  mode: enforce\n"
    )
    monkeypatch.setenv("DCICD_CONFIG", str(tmp_path / "dcicd.yaml"))
    screens.print_gate_verdicts(Home(home))
    heads = [line for line in capsys.readouterr().out.splitlines() if " -> " in line]
    assert heads == ["search @ s9 -> production: go", "payments @ c2 -> production: go"]
    assert [(r["service"], r["sha"], r["asked_by"]) for r in gates_table(home)] == [
        ("search", "s9", "demo"),
        ("payments", "c2", "demo"),
    ]


def test_a_ci_job_may_name_the_repository(tmp_path):
    """GitHub Actions knows `github.repository`, GitLab CI `CI_PROJECT_PATH`: a repository a
    configured service lists stands for that service."""
    home = make_home(tmp_path / "home", PROBLEMS["workflows"])
    cfg = parse_config(
        json.dumps(
            {
                "services": [{"name": SERVICE, "repositories": ["acme/payments"]}],
                "gate": {"mode": "enforce"},
            }
        )
    )
    verdict = ask(home, "acme/payments", CANDIDATE, config=cfg, now=NOW)
    assert (verdict.service, verdict.verdict) == (SERVICE, "no-go")
    # Unconfigured, the repository's name is the service's, which this warehouse does not use.
    assert ask(home, "acme/payments", CANDIDATE, config=config(), now=NOW).verdict == "undecided"


def test_a_refresh_writes_what_the_gate_left_in_its_journal(tmp_path):
    """The snapshot step, the last of a refresh, moves pending verdicts into ops.gates."""
    import dagster as dg

    from dcicd_platform.assets.snapshot import snapshot_asset
    from dcicd_platform.resources import warehouse_resource

    home = make_home(tmp_path / "home")
    verdict = ask(home, SERVICE, CANDIDATE, config=config(), now=NOW)
    assert audit.pending(home) == 1
    result = dg.materialize(
        [snapshot_asset([])],
        resources={"warehouse": warehouse_resource(home / "warehouse.duckdb", "512MB")},
    )
    assert result.success
    assert audit.pending(home) == 0
    assert [r["gate_id"] for r in gates_table(home)] == [verdict.gate_id]
    snapshot = duckdb.connect(str(home / "warehouse.snapshot.duckdb"), read_only=True)
    try:  # the published snapshot has it too
        assert snapshot.execute("SELECT gate_id FROM ops.gates").fetchall() == [(verdict.gate_id,)]
    finally:
        snapshot.close()


# A second service, ledger (repository acme/ledger), with a sha it ran, pushed and deployed.
LEDGER = (
    "INSERT INTO core.pipeline_runs VALUES ('l1', 'acme/ledger', 'ledger', 'ci', 'main', 'e1',"
    " 'completed', 'success', 1, '2026-11-30 08:00+00')",
    "INSERT INTO core.commits VALUES ('acme/ledger', 'main', 'e1', 1, '2026-11-30 07:00+00')",
    "INSERT INTO core.deployments VALUES ('dl1', 'ledger', 'acme/ledger', 'production', 'e1',"
    " 'success', '2026-11-30 09:00+00', true)",
)


def test_a_sha_of_another_service_is_unknown_for_this_one(tmp_path):
    home = make_home(tmp_path / "home", *LEDGER)
    theirs = verdict_in(home, sha="e1")
    assert (theirs.verdict, theirs.exit_code, theirs.reasons) == ("undecided", 2, [])
    assert "knows nothing of e1 for payments" in theirs.why_undecided
    # Only pushed to the other repository (no run, no deployment anywhere): unknown too.
    pushed = make_home(tmp_path / "pushed", LEDGER[1])
    assert "knows nothing of e1 for payments" in verdict_in(pushed, sha="e1").why_undecided
    # The sha is the other service's own: its rules judge it.
    ledger = ask(home, "ledger", "e1", config=config(), now=NOW)
    assert ledger.why_undecided is None and ledger.verdict == "go"
    cli = run_cli(tmp_path, home, "--sha", "e1")
    assert cli.exit_code == 2 and "knows nothing of e1 for payments" in cli.output


def test_a_short_or_upper_case_sha_stands_for_the_one_commit_it_starts(tmp_path):
    full, sibling, elsewhere = ("0123abcd" + "1" * 32, "0123abce" + "2" * 32, "0123abcf" + "3" * 32)
    home = make_home(
        tmp_path / "home",
        f"UPDATE core.pipeline_runs SET sha = '{full}' WHERE sha = 'c4'",
        f"UPDATE core.commits SET sha = '{full}' WHERE sha = 'c4'",
        f"INSERT INTO core.commits VALUES ('acme/payments', 'feature', '{sibling}', 1,"
        " '2026-11-30 09:30+00')",
        f"INSERT INTO core.commits VALUES ('acme/ledger', 'main', '{elsewhere}', 1,"
        " '2026-11-30 09:30+00')",
    )
    exact = verdict_in(home, sha=full)
    assert (exact.verdict, exact.sha) == ("go", full)
    for given in (full[:8], full[:8].upper(), full.upper(), full[:20]):
        verdict = verdict_in(home, sha=given)
        assert (verdict.verdict, verdict.sha, verdict.reasons) == ("go", full, exact.reasons)
    # Seven characters both payments commits start with (the ledger's does not count).
    ambiguous = verdict_in(home, sha="0123ABC")
    assert (ambiguous.verdict, ambiguous.exit_code, ambiguous.sha) == ("undecided", 2, "0123ABC")
    assert "0123ABC is ambiguous for payments: 2 of its commits" in ambiguous.why_undecided
    assert full in ambiguous.why_undecided and elsewhere not in ambiguous.why_undecided
    # Under seven characters a prefix is not looked up.
    assert "knows nothing of 0123ab" in verdict_in(home, sha="0123ab").why_undecided
    cli = run_cli(tmp_path, home, "--sha", full[:8].upper(), "--format", "json")
    assert cli.exit_code == 0 and json.loads(cli.output)["sha"] == full
    assert gates_table(home)[-1]["sha"] == full


def test_an_empty_sha_is_a_usage_error_and_not_recorded(tmp_path):
    home = make_home(tmp_path / "home")
    for empty in ("", "   "):
        refused = run_cli(tmp_path, home, "--sha", empty)
        assert refused.exit_code == 2 and "--sha is empty" in refused.output
    assert not (home / "gates").exists() or not list((home / "gates").glob("*.ndjson"))
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = conn.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'ops'")
        assert "gates" not in {name for (name,) in tables.fetchall()}
    finally:
        conn.close()


def test_shadow_mode_never_blocks_a_ci_step_even_when_it_cannot_decide(tmp_path):
    home = make_home(tmp_path / "home", *LEDGER)
    for sha in ("f00", "e1"):
        shadow = run_cli(tmp_path, home, "--sha", sha, "--format", "json", mode="shadow")
        answer = json.loads(shadow.output)
        assert shadow.exit_code == 0, shadow.output
        assert (answer["verdict"], answer["enforced"]) == ("go", "undecided")
    assert [(r["verdict"], r["enforced_verdict"]) for r in gates_table(home)] == [
        ("go", "undecided"),
        ("go", "undecided"),
    ]
