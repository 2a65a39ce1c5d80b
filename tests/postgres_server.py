"""A throwaway PostgreSQL server on 127.0.0.1, from the machine's own binaries (Debian's
`postgresql` package), for the production-profile test."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PASSWORD = "dcicd-test"


def find_binaries() -> Path | None:
    """The folder with initdb and pg_ctl: on PATH, else Debian's versioned folder."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """initdb into a fresh folder, start on a free port, stop and delete on close. As root,
    the server runs as the `postgres` user (PostgreSQL refuses to run as root)."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="dcicd-pg-", dir="/tmp"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres")
        (self.folder / "pw").write_text(PASSWORD)
        if self.as_user:
            shutil.chown(self.folder / "pw", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "dcicd",
            "--auth=scram-sha-256",
            f"--pwfile={self.folder / 'pw'}",
            "--encoding=UTF8",
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.folder} -c fsync=off",
            "start",
        )

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.binaries / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(f"{tool} failed: {done.stderr or done.stdout}")

    def url(self, database: str) -> str:
        """SQLAlchemy URL with the driver named: SQLAlchemy 2.1 would otherwise pick psycopg 3,
        which dagster-postgres's statements do not run on."""
        return f"postgresql+psycopg2://dcicd:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str) -> str:
        return f"postgresql://dcicd:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(self.dsn("postgres"))
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        conn.close()

    def query(self, database: str, sql: str) -> list[tuple]:
        import psycopg2

        with psycopg2.connect(self.dsn(database)) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    def close(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
