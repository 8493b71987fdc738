"""`Storage`: one database, migrated on open, and all its SQL. The database is a SQLite file
(WAL mode; the default, with no settings), in memory, or PostgreSQL (`DATABASE_URL`).

Each job's SQL lives in its own module (`schema` and `schema_pg`, `policies`, `questions`,
`groups`, `deliveries`, `vectors`, over `connection`); `Storage` is all of them on one
connection.
Callers import from here: the names below are the store's public surface.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bot.config import POSTGRES_SCHEMES, prepare_threshold_of
from bot.store import schema_pg
from bot.store.connection import (
    POSTGRESQL,
    SQLITE,
    PostgresDatabase,
    SQLiteDatabase,
    StorageError,
    utcnow,
)
from bot.store.console import ConsoleLink, ConsoleSession, ConsoleStore
from bot.store.deliveries import (
    DELIVERY_PRUNE_INTERVAL,
    DELIVERY_RETENTION,
    LOGGED,
    REPLIED,
    DeliveryStore,
    ReceivedQuestion,
)
from bot.store.groups import GroupStore
from bot.store.policies import PolicyStore, VersionInfo, content_hash
from bot.store.questions import QuestionLog
from bot.store.rows import (
    PendingDelivery,
    QuestionFact,
    QuestionRow,
    ReviewAction,
    RoutedQuestion,
)
from bot.store.schema import migrations
from bot.store.vectors import ClauseVector, VectorStore

__all__ = [
    "DELIVERY_PRUNE_INTERVAL",
    "DELIVERY_RETENTION",
    "LOGGED",
    "POSTGRESQL",
    "REPLIED",
    "SQLITE",
    "ClauseVector",
    "ConsoleLink",
    "ConsoleSession",
    "PendingDelivery",
    "QuestionFact",
    "QuestionRow",
    "ReceivedQuestion",
    "ReviewAction",
    "RoutedQuestion",
    "Storage",
    "StorageError",
    "VersionInfo",
    "content_hash",
    "is_postgres_url",
    "migrations",
    "utcnow",
]


def is_postgres_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.strip().lower().startswith(POSTGRES_SCHEMES)


class Storage(PolicyStore, QuestionLog, GroupStore, DeliveryStore, VectorStore, ConsoleStore):
    """One database, migrated on open: a SQLite file (WAL mode) or PostgreSQL."""

    @classmethod
    def open(cls, location: str | Path) -> Storage:
        """The database at `location`: a PostgreSQL URL, or else a SQLite file's path."""
        if is_postgres_url(location):
            return cls.open_postgres(str(location))
        path = Path(location)
        if path.exists() and path.is_dir():
            raise StorageError(f"{path} is a folder, not a database file.")
        if not path.parent.exists():
            raise StorageError(
                f"Cannot create the database {path}: folder {path.parent} is missing."
            )
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
            db = SQLiteDatabase(conn)
            db.execute("PRAGMA busy_timeout = 10000")
            db.utils.enable_wal()
            # Each commit's log fsynced unless a transaction says otherwise (`atomic`); said
            # here, since a build of SQLite may default to NORMAL in WAL mode.
            db.execute("PRAGMA synchronous = FULL")
            storage = cls(db)
            storage.path = path
            storage.location = path
            storage.migrate()
        except sqlite3.DatabaseError as error:
            if conn is not None:
                conn.close()  # a damaged file must not stay open (a restore replaces it)
            raise StorageError(f"Cannot use the database {path}: {error}") from None
        return storage

    @classmethod
    def open_postgres(cls, url: str, *, migrated: bool = True) -> Storage:
        """PostgreSQL at `url`, migrated (unless `migrated` is False: `db copy` looks at a
        target before it writes anything to it). Errors name the server without the URL's password
        (libpq's own messages never carry it; they are redacted all the same)."""
        import psycopg

        from bot.redaction import Redactor, database_url_secrets, shown_database_url

        shown = shown_database_url(url)
        redactor = Redactor(database_url_secrets(url))
        conn: psycopg.Connection[Any] | None = None
        try:
            # A write waits at most this long for a lock (PostgreSQL's busy timeout), and an
            # unreachable server fails the start within the connect timeout.
            conninfo, prepare_threshold = prepare_threshold_of(url)
            conn = psycopg.connect(
                conninfo,
                # Statements run often (a question's receive, log, search) are prepared on the
                # server after a few runs: less CPU per answer in the replica and in
                # PostgreSQL (docs/benchmarks.md's replicas figures; measured in the
                # commit that turned it on).
                prepare_threshold=prepare_threshold,
                autocommit=True,
                connect_timeout=10,
                options="-c lock_timeout=10000",
                application_name="policybot",
            )
            storage = cls(PostgresDatabase(conn))
            storage.location = url.strip()
            if migrated:
                storage.migrate()
        except psycopg.Error as error:
            if conn is not None:
                conn.close()
            reason = redactor.scrub(str(error).strip())
            raise StorageError(f"Cannot use the database {shown}: {reason}") from None
        return storage

    @classmethod
    def memory(cls) -> Storage:
        storage = cls(SQLiteDatabase.memory())
        storage.migrate()
        return storage

    def migrate(self) -> list[str]:
        """Apply the migrations this database lacks; the names applied now."""
        if isinstance(self.db, PostgresDatabase):
            return schema_pg.migrate(self.db)
        assert isinstance(self.db, SQLiteDatabase)
        before = set(self._applied())
        migrations.apply(self.db.utils)
        return [name for name in self._applied() if name not in before]

    def _applied(self) -> list[str]:
        if isinstance(self.db, PostgresDatabase):
            return schema_pg.applied(self.db)
        assert isinstance(self.db, SQLiteDatabase)
        return [m.name for m in migrations.applied(self.db.utils)]

    @property
    def schema_version(self) -> int:
        return len(self._applied())
