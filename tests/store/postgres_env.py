"""A real PostgreSQL (Debian package ``postgresql``) on 127.0.0.1 for the tests.

``initdb`` into a fresh temporary folder, ``pg_ctl start`` on a free port (TCP on
127.0.0.1 and a unix socket in that folder), trust authentication for the local test
superuser ``varco``; fsync off, no persistence concerns. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` system user the package creates.
Each test gets its own database, copied from a template that ``varco db upgrade``
migrated once: the real command, and a fresh schema per test in milliseconds.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from broker.paths import project_dir, project_root
from tests.store.redis_env import free_port

SUPERUSER = "varco"
TEMPLATE = "varco_template"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: apt-get install postgresql")
    return found[-1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@dataclass
class PostgresServer:
    port: int
    folder: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self, template: str | None = TEMPLATE) -> str:
        """A fresh database (copied from the migrated template); returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"'
                         + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        subprocess.run(_as_server_user([_bin("pg_ctl"), "stop", "-D", str(self.folder / "data"),
                                        "-m", "immediate", "-w"]),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Start a throwaway cluster and migrate the template database with ``varco db upgrade``."""
    # Not under pytest's tmp folder: that one is private to root and the server runs as
    # the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="varco-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    run = {"capture_output": True, "text": True, "timeout": 120, "check": False}
    done = subprocess.run(_as_server_user([_bin("initdb"), "-D", str(data), "-U", SUPERUSER,
                                           "--auth=trust", "-E", "UTF8", "--no-locale"]),
                          **run)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed: {done.stderr}")
    port = free_port()
    options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
    done = subprocess.run(_as_server_user([_bin("pg_ctl"), "start", "-D", str(data), "-w",
                                           "-t", "60", "-l", str(folder / "server.log"),
                                           "-o", options]), **run)  # type: ignore[call-overload]
    server = PostgresServer(port, folder)
    if done.returncode != 0:
        log = folder / "server.log"
        text = log.read_text() if log.exists() else done.stderr
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start: {text}")
    with server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    upgraded = db_upgrade(server.url(TEMPLATE))
    if upgraded.returncode != 0:
        server.stop()
        raise RuntimeError(f"varco db upgrade failed: {upgraded.stdout}{upgraded.stderr}")
    return server


def db_upgrade(url: str) -> subprocess.CompletedProcess[str]:
    """``varco db upgrade`` in its own process, configured as an operator would."""
    env = {**os.environ, "VARCO__STORE__DURABLE": "postgres", "VARCO_DATABASE_URL": url,
           "PYTHONPATH": str(project_root())}
    return subprocess.run(
        [sys.executable, "-m", "broker.cli.main", "db", "upgrade",
         "--config", str(project_dir("config") / "demo.yaml")],
        capture_output=True, text=True, timeout=120, env=env, check=False)
