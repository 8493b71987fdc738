"""A throwaway PostgreSQL cluster for the tests and the bench: initdb and pg_ctl from the
machine's server binaries (PATH, then /usr/lib/postgresql/*/bin), its data and unix socket
under a temporary folder, listening on 127.0.0.1 on a free port with trust authentication,
stopped at the end (tests/postgres.py re-exports it: bench never imports the tests).

One cluster per test session; each test (or bench scenario) gets a database of its own,
copied from a template that is migrated once (`CREATE DATABASE … TEMPLATE`), so a test
costs a file copy, not a run of every migration.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Set to 1 to run without PostgreSQL where its binaries are missing: its tests are then
#: skipped and say why. Unset (CI), missing binaries fail the run.
SKIP_VARIABLE = "POLICYBOT_TEST_SKIP_POSTGRES"
TEMPLATE = "policybot_template"


class PostgresMissing(RuntimeError):
    pass


def server_binaries() -> Path:
    """The folder holding initdb and pg_ctl."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresMissing(
        "The PostgreSQL tests need the server binaries initdb and pg_ctl (PostgreSQL 15: "
        "apt-get install postgresql-15), on PATH or in /usr/lib/postgresql/*/bin; none were "
        f"found. Set {SKIP_VARIABLE}=1 to skip the PostgreSQL half of the suite on this machine."
    )


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user() -> tuple[Callable[[], None] | None, int | None, int | None]:
    """initdb refuses to run as root: under root (containers, CI) the cluster runs as the
    `postgres` account the server package creates."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing(
            "The tests run as root, and initdb refuses root; create a 'postgres' user for the "
            "throwaway cluster (the PostgreSQL server package does)."
        ) from None

    def demote() -> None:
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)

    return demote, account.pw_uid, account.pw_gid


@dataclass
class Cluster:
    folder: Path
    port: int
    binaries: Path
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.encode())  # names made here, never input

    def new_database(self) -> str:
        """A fresh, migrated database's URL."""
        name = f"test_{os.getpid()}_{next(self._numbers)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def empty_database(self) -> str:
        """A database with no tables at all (migrations not run)."""
        name = f"empty_{os.getpid()}_{next(self._numbers)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def drop(self, url: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    binaries = server_binaries()
    demote, uid, gid = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="policybot-pg-"))
    data = folder / "data"
    if uid is not None and gid is not None:
        os.chown(folder, uid, gid)
    log = folder / "server.log"

    def run(*command: str) -> None:
        done = subprocess.run(
            command, preexec_fn=demote, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}\n{server_log}"
            )

    port = _free_port()
    run(
        str(binaries / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    )
    # Durability is not what these tests measure: no fsync keeps CREATE DATABASE quick.
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    cluster = Cluster(folder, port, binaries)
    try:
        from bot.store.database import Storage

        cluster.admin(f"CREATE DATABASE {TEMPLATE}")
        Storage.open(cluster.url(TEMPLATE)).close()  # every migration, once
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
