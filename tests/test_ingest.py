"""Loading envelope files: bad input is quarantined with its reason, nothing is lost or doubled."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from dcicd_platform.ingest import loader
from dcicd_platform.ingest.envelope import envelope_line, make_envelope
from dcicd_platform.ingest.loader import load_file, load_files
from tests.helpers import fixture_envelope, rows, write_envelopes


@pytest.fixture
def conn(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def sample(delivery_id: str, **changes) -> dict:
    envelope = fixture_envelope(
        "github/workflow_job/completed.success.with-organization.payload.json", delivery_id
    )
    envelope.update(changes)
    return envelope


def assert_accounted(report) -> None:
    assert report.loaded + report.duplicates + report.quarantined == report.lines


def quarantine(conn) -> list[tuple[int, str]]:
    return [
        (r["line_number"], r["reason"])
        for r in rows(conn, "SELECT * FROM raw.quarantine ORDER BY line_number")
    ]


def test_bad_lines_are_quarantined_with_reasons(conn, tmp_path):
    good = envelope_line(sample("good-1"))
    missing_payload = {k: v for k, v in sample("m").items() if k != "payload"}
    lines = [
        good,
        good[: len(good) // 2] + b"\n",  # truncated JSON
        envelope_line({**sample("t1"), "received_at": 1700000000}),  # wrong type
        envelope_line(missing_payload),
        envelope_line(sample("s1", source="jenkins")),
        envelope_line(sample("r1", received_at="yesterday")),
        b"\xff\xfe\x00binary\x01garbage\n",
        b"[1, 2, 3]\n",
        b"\n",
        envelope_line(sample("wj", payload={"action": "completed", "workflow_job": {"id": "x"}})),
        envelope_line(sample("good-2")),
    ]
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b"".join(lines))
    report = load_file(conn, path)
    assert_accounted(report)
    assert (report.lines, report.loaded, report.quarantined) == (11, 2, 9)
    reasons = dict(quarantine(conn))
    assert reasons[2] == "not valid JSON"
    assert reasons[3] == "received_at is not a string"
    assert reasons[4] == "missing field payload (absent or null)"
    assert reasons[5].startswith("unknown source jenkins")
    assert reasons[6] == "received_at is not an RFC 3339 time"
    assert reasons[7].startswith("line is not UTF-8 text")
    assert reasons[8] == "not a JSON object"
    assert reasons[9] == "empty line"
    assert reasons[10] == "github/workflow_job payload lacks repository.full_name"
    raw = rows(conn, "SELECT raw_line FROM raw.quarantine WHERE line_number = 2")[0]["raw_line"]
    assert raw.encode() == good[: len(good) // 2]  # the whole line, without its newline


def test_payload_type_errors_name_the_field(conn, tmp_path):
    bad_id = sample("x")
    bad_id["payload"]["workflow_job"]["run_id"] = "2202229078"
    bad_time = sample("y")
    bad_time["payload"]["workflow_job"]["completed_at"] = "soon"
    health = make_envelope(
        "h",
        "metrics",
        "health_sample",
        {
            "service": "a",
            "environment": "prod",
            "ts": "2026-01-01T00:00:00Z",
            "requests": 10.5,
            "errors": 0,
            "latency_p95_ms": 1,
        },
    )
    report = load_file(conn, write_envelopes(tmp_path / "t.ndjson", [bad_id, bad_time, health]))
    assert report.quarantined == 3
    assert [r for _, r in quarantine(conn)] == [
        "github/workflow_job payload field workflow_job.run_id is not an integer",
        "github/workflow_job payload field workflow_job.completed_at is not a readable time",
        "metrics/health_sample payload field requests is not an integer",
    ]


def test_unmodelled_event_types_are_kept_in_raw(conn, tmp_path):
    envelope = fixture_envelope("github/pull_request/opened.payload.json")
    report = load_file(conn, write_envelopes(tmp_path / "pr.ndjson", [envelope]))
    assert report.loaded == 1
    assert rows(conn, "SELECT event_type FROM raw.events") == [{"event_type": "pull_request"}]


def test_a_five_megabyte_line_loads(conn, tmp_path):
    envelope = sample("big")
    envelope["payload"]["workflow_job"]["steps"] = [
        {"name": "x" * 1000, "number": i} for i in range(5000)
    ]
    path = write_envelopes(tmp_path / "big.ndjson", [envelope, sample("small")])
    assert path.stat().st_size > 5_000_000
    report = load_file(conn, path)
    assert (report.loaded, report.quarantined) == (2, 0)


def test_duplicates_within_and_across_files(conn, tmp_path):
    first = write_envelopes(tmp_path / "a.ndjson", [sample("d1"), sample("d2"), sample("d1")])
    second = write_envelopes(tmp_path / "b.ndjson", [sample("d2"), sample("d3")])
    a, b = load_files(conn, [first, second])
    assert (a.loaded, a.duplicates) == (2, 1) and (b.loaded, b.duplicates) == (1, 1)
    assert_accounted(a)
    assert_accounted(b)
    kept = rows(
        conn, "SELECT delivery_id, landing_file, line_number FROM raw.events ORDER BY delivery_id"
    )
    assert [(r["delivery_id"], r["line_number"]) for r in kept] == [("d1", 1), ("d2", 2), ("d3", 2)]


def test_a_duplicate_of_a_quarantined_line_still_loads(conn, tmp_path):
    broken = sample("q1", payload={"action": "completed"})
    report = load_file(conn, write_envelopes(tmp_path / "a.ndjson", [broken, sample("q1")]))
    assert (report.loaded, report.duplicates, report.quarantined) == (1, 0, 1)


def test_the_same_file_twice_is_loaded_once(conn, tmp_path):
    path = write_envelopes(tmp_path / "a.ndjson", [sample("s1"), sample("s2")])
    copy = tmp_path / "renamed-copy.ndjson"
    copy.write_bytes(path.read_bytes())
    first, again, renamed = load_files(conn, [path, path, copy])
    assert first.status == "loaded" and first.loaded == 2
    assert again.status == "already_loaded" and renamed.status == "already_loaded"
    assert conn.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM raw.files").fetchone()[0] == 1


def test_empty_file(conn, tmp_path):
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"")
    report = load_file(conn, path)
    assert report.status == "loaded" and report.lines == 0
    assert_accounted(report)


def test_gzip_files_load(conn, tmp_path):
    path = tmp_path / "events.ndjson.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(envelope_line(sample("g1")) + envelope_line(sample("g2")))
    report = load_file(conn, path)
    assert (report.status, report.loaded) == ("loaded", 2)


def test_unreadable_files_are_reported_and_the_rest_load(conn, tmp_path):
    not_gzip = tmp_path / "fake.ndjson.gz"
    not_gzip.write_bytes(envelope_line(sample("n1")))
    utf16 = tmp_path / "utf16.ndjson"
    utf16.write_bytes(envelope_line(sample("u1")).decode().encode("utf-16"))
    latin1 = tmp_path / "latin1.ndjson"
    latin1.write_bytes(b'{"delivery_id": "caf\xe9"}\n')
    missing = tmp_path / "missing.ndjson"
    folder = tmp_path / "folder.ndjson"
    folder.mkdir()
    good = write_envelopes(tmp_path / "good.ndjson", [sample("ok")])
    reports = load_files(conn, [not_gzip, utf16, latin1, missing, folder, good])
    status = {r.path.rsplit("/", 1)[-1]: (r.status, r.error) for r in reports}
    assert status["fake.ndjson.gz"][0] == "unreadable" and "gzip" in status["fake.ndjson.gz"][1]
    assert status["utf16.ndjson"] == ("unreadable", "not UTF-8 text (UTF-16/32 byte order mark)")
    assert status["latin1.ndjson"] == ("unreadable", "not UTF-8 text")
    assert status["missing.ndjson"][0] == "unreadable"
    assert status["folder.ndjson"][0] == "unreadable"
    assert status["good.ndjson"][0] == "loaded"
    assert conn.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied_is_reported(conn, tmp_path):
    path = write_envelopes(tmp_path / "secret.ndjson", [sample("p1")])
    path.chmod(0)
    report = load_file(conn, path)
    assert report.status == "unreadable" and "ermission" in report.error


def test_a_file_failing_midway_leaves_nothing_behind(conn, tmp_path, monkeypatch):
    # Small chunks, so the first chunks are validated and inserted before the corrupt tail.
    monkeypatch.setattr(loader, "CHUNK_BYTES", 4096)
    payload = b"".join(envelope_line(sample(f"c{i}")) for i in range(40))
    path = tmp_path / "torn.ndjson.gz"
    path.write_bytes(gzip.compress(payload)[:-200])
    report = load_file(conn, path)
    assert report.status == "unreadable"
    assert conn.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM raw.files").fetchone()[0] == 0
    # Once the whole file arrives it loads, every line once.
    path.write_bytes(gzip.compress(payload))
    assert load_file(conn, path).loaded == 40


def test_chunk_boundaries_do_not_split_lines(conn, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "CHUNK_BYTES", 1000)  # smaller than one line
    path = write_envelopes(tmp_path / "many.ndjson", [sample(f"k{i}") for i in range(25)])
    report = load_file(conn, path)
    assert (report.lines, report.loaded, report.quarantined) == (25, 25, 0)
    numbers = [
        r["line_number"] for r in rows(conn, "SELECT line_number FROM raw.events ORDER BY 1")
    ]
    assert numbers == list(range(1, 26))


def test_killing_the_loader_midway_loads_nothing_of_the_file(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    path = write_envelopes(tmp_path / "large.ndjson", [sample(f"x{i}") for i in range(3000)])
    script = (
        "import sys, duckdb, pathlib\n"
        "from dcicd_platform.ingest import loader\n"
        "loader.CHUNK_BYTES = 64 * 1024\n"
        "conn = duckdb.connect(sys.argv[1])\n"
        "print('started', flush=True)\n"
        "loader.load_file(conn, pathlib.Path(sys.argv[2]))\n"
        "print('finished', flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(database), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "started"
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with duckdb.connect(str(database)) as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        loaded = (
            conn.execute("SELECT count(*) FROM raw.events").fetchone()[0]
            if "events" in tables
            else 0
        )
        ledger = (
            conn.execute("SELECT count(*) FROM raw.files").fetchone()[0] if "files" in tables else 0
        )
        assert (loaded, ledger) in ((0, 0), (3000, 1)), "a killed load must leave all or nothing"
        # Loading again completes the file exactly once.
        report = load_file(conn, path)
        assert conn.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 3000
        assert report.status in ("loaded", "already_loaded")


def test_every_line_is_accounted_for(conn, tmp_path):
    envelopes = [sample(f"a{i % 7}") for i in range(30)]
    envelopes[3] = {"not": "an envelope"}
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(
        b"".join(
            envelope_line(e) if "delivery_id" in e else (json.dumps(e) + "\n").encode()
            for e in envelopes
        )
    )
    report = load_file(conn, path)
    assert_accounted(report)
    assert (report.loaded, report.quarantined) == (7, 1)


def test_a_utf8_byte_order_mark_is_ignored(conn, tmp_path):
    path = tmp_path / "bom.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + envelope_line(sample("bom1")))
    report = load_file(conn, path)
    assert (report.status, report.loaded, report.quarantined) == ("loaded", 1, 0)


def _prepared_together(monkeypatch) -> None:
    """Make the first two files of a batch finish preparing before either commits, so the
    second file's transaction cannot see the first one's rows: only the batch check can."""
    import threading

    barrier = threading.Barrier(2, timeout=60)
    prepare = loader._prepare

    def together(*args):
        prepared = prepare(*args)
        if threading.current_thread() is not threading.main_thread():
            barrier.wait()
        return prepared

    monkeypatch.setattr(loader, "_prepare", together)


def test_a_delivery_in_two_files_of_a_parallel_batch_loads_once(conn, tmp_path, monkeypatch):
    _prepared_together(monkeypatch)
    first = write_envelopes(tmp_path / "a.ndjson", [sample("p1"), sample("shared")])
    second = write_envelopes(
        tmp_path / "b.ndjson", [sample("shared"), sample("p2"), sample("shared")]
    )
    a, b = load_files(conn, [first, second], parallel=2)
    assert (a.loaded, a.duplicates) == (2, 0)
    assert (b.lines, b.loaded, b.duplicates, b.quarantined) == (3, 1, 2, 0)
    kept = rows(conn, "SELECT delivery_id, landing_file, line_number FROM raw.events")
    shared = [(r["landing_file"], r["line_number"]) for r in kept if r["delivery_id"] == "shared"]
    assert shared == [(str(first), 2)]
    ledger = rows(conn, "SELECT landing_file, loaded, duplicates FROM raw.files ORDER BY 1")
    assert [(r["loaded"], r["duplicates"]) for r in ledger] == [(2, 0), (1, 2)]
    # The same files one after another give the same reports.
    home = duckdb.connect(str(tmp_path / "sequential.duckdb"))
    sequential = load_files(home, [first, second], parallel=1)
    home.close()
    assert [(r.loaded, r.duplicates, r.quarantined) for r in sequential] == [
        (r.loaded, r.duplicates, r.quarantined) for r in (a, b)
    ]


def test_a_delivery_quarantined_in_the_first_file_loads_from_the_second(
    conn, tmp_path, monkeypatch
):
    _prepared_together(monkeypatch)
    broken = sample("q1", payload={"action": "completed"})
    first = write_envelopes(tmp_path / "a.ndjson", [broken])
    second = write_envelopes(tmp_path / "b.ndjson", [sample("q1")])
    a, b = load_files(conn, [first, second], parallel=2)
    assert (a.loaded, a.quarantined) == (0, 1) and (b.loaded, b.duplicates) == (1, 0)


def test_a_file_failing_mid_batch_leaves_the_others_committed(conn, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "CHUNK_BYTES", 4096)
    good = [
        write_envelopes(tmp_path / f"{n}.ndjson", [sample(f"{n}{i}") for i in range(20)])
        for n in ("a", "c", "d")
    ]
    torn = tmp_path / "b.ndjson.gz"
    torn.write_bytes(
        gzip.compress(b"".join(envelope_line(sample(f"b{i}")) for i in range(40)))[:-200]
    )
    batch = [good[0], torn, good[1], good[2]]
    reports = load_files(conn, batch, parallel=2)
    assert [r.status for r in reports] == ["loaded", "unreadable", "loaded", "loaded"]
    assert (
        conn.execute("SELECT count(*) FROM raw.events WHERE delivery_id LIKE 'b%'").fetchone()[0]
        == 0
    )
    assert conn.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 60
    assert conn.execute("SELECT count(*) FROM raw.files").fetchone()[0] == 3


def test_an_error_mid_batch_commits_the_files_before_it_only(conn, tmp_path, monkeypatch):
    paths = [
        write_envelopes(tmp_path / f"{n}.ndjson", [sample(f"{n}{i}") for i in range(5)])
        for n in ("a", "b", "c", "d")
    ]
    load_lines = loader._load_lines

    def failing(conn, path, name, load_id):
        if path.name == "b.ndjson":
            raise RuntimeError("disk full")
        return load_lines(conn, path, name, load_id)

    monkeypatch.setattr(loader, "_load_lines", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        load_files(conn, paths, parallel=2)
    loaded = rows(conn, "SELECT DISTINCT landing_file FROM raw.events")
    assert [r["landing_file"] for r in loaded] == [str(paths[0])]
    assert conn.execute("SELECT count(*) FROM raw.files").fetchone()[0] == 1
    # Once the cause is gone, the batch again loads what is missing, each delivery once.
    monkeypatch.setattr(loader, "_load_lines", load_lines)
    again = load_files(conn, paths, parallel=2)
    assert [r.status for r in again] == ["already_loaded", "loaded", "loaded", "loaded"]
    assert conn.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 20


def test_running_a_parallel_batch_again_changes_nothing(conn, tmp_path):
    paths = [
        write_envelopes(
            tmp_path / f"{n}.ndjson", [sample(f"{n}{i}") for i in range(5)] + [sample("same")]
        )
        for n in ("a", "b", "c")
    ]
    first = load_files(conn, paths, parallel=2)
    assert [(r.loaded, r.duplicates) for r in first] == [(6, 0), (5, 1), (5, 1)]
    for r in first:
        assert_accounted(r)
    before = rows(conn, "SELECT * FROM raw.events ORDER BY landing_file, line_number")
    again = load_files(conn, paths, parallel=2)
    assert [r.status for r in again] == ["already_loaded"] * 3
    assert rows(conn, "SELECT * FROM raw.events ORDER BY landing_file, line_number") == before
    assert conn.execute("SELECT count(*) FROM raw.files").fetchone()[0] == 3
