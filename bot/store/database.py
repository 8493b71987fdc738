"""`Storage`: one SQLite database file (WAL mode), migrated on open, and all its SQL.

Each job's SQL lives in its own module (`schema`, `policies`, `questions`, `groups`,
`deliveries`, `vectors`, over `connection`); `Storage` is all of them on one connection.
Callers import from here: the names below are the store's public surface.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.store.connection import Database, StorageError, utcnow
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
from bot.store.rows import PendingDelivery, QuestionRow, RoutedQuestion
from bot.store.schema import migrations
from bot.store.vectors import ClauseVector, VectorStore

__all__ = [
    "DELIVERY_PRUNE_INTERVAL",
    "DELIVERY_RETENTION",
    "LOGGED",
    "REPLIED",
    "ClauseVector",
    "PendingDelivery",
    "QuestionRow",
    "ReceivedQuestion",
    "RoutedQuestion",
    "Storage",
    "StorageError",
    "VersionInfo",
    "content_hash",
    "migrations",
    "utcnow",
]


class Storage(PolicyStore, QuestionLog, GroupStore, DeliveryStore, VectorStore):
    """One SQLite database file (WAL mode), migrated on open."""

    @classmethod
    def open(cls, path: str | Path) -> Storage:
        path = Path(path)
        if path.exists() and path.is_dir():
            raise StorageError(f"{path} is a folder, not a database file.")
        if not path.parent.exists():
            raise StorageError(
                f"Cannot create the database {path}: folder {path.parent} is missing."
            )
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
            db = Database(conn)
            db.execute("PRAGMA busy_timeout = 10000")
            db.enable_wal()
            storage = cls(db)
            storage.path = path
            storage.migrate()
        except sqlite3.DatabaseError as error:
            if conn is not None:
                conn.close()  # a damaged file must not stay open (a restore replaces it)
            raise StorageError(f"Cannot use the database {path}: {error}") from None
        return storage

    @classmethod
    def memory(cls) -> Storage:
        storage = cls(Database(memory=True))
        storage.migrate()
        return storage

    def migrate(self) -> None:
        migrations.apply(self.db)

    @property
    def schema_version(self) -> int:
        return len(migrations.applied(self.db))
