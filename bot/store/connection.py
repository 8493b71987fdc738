"""The connection every part of `Storage` shares: write transactions that take the lock when
they begin, `transaction`, backup, and SQLite's refusals to write as a `StorageError`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils
from sqlite_utils.db import Table


class StorageError(RuntimeError):
    """The database cannot be opened or written; the message says what to do."""


class Database(sqlite_utils.Database):
    """sqlite_utils' Database whose transactions take the write lock when they begin.

    A deferred transaction that reads and then writes cannot wait for the lock: if another
    connection (`policybot policy load` beside a running server) committed after its first
    read, SQLite refuses the write at once with "database is locked", busy timeout or not.
    BEGIN IMMEDIATE waits for the lock up front instead, within the busy timeout.
    """

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        if self.conn.in_transaction:
            with super().atomic() as db:  # nested: a savepoint inside the open transaction
                yield db
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Connected:
    """What each part of `Storage` works through: the database and its write guard."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        #: The database file; None for an in-memory database.
        self.path: Path | None = None

    def close(self) -> None:
        self.db.close()

    def backup(self, destination: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup), safe while serving."""
        if destination.exists():
            raise StorageError(f"{destination} exists; choose a new file for the backup.")
        try:
            target = sqlite3.connect(str(destination))
        except sqlite3.Error as error:
            raise StorageError(f"Cannot write the backup {destination}: {error}") from None
        try:
            with target:
                self.db.conn.backup(target)
        except sqlite3.Error as error:
            target.close()
            destination.unlink(missing_ok=True)
            raise StorageError(f"Backup to {destination} failed: {error}") from None
        target.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._writing("The database"), self.db.atomic():
            yield

    def _table(self, name: str) -> Table:
        table = self.db[name]
        assert isinstance(table, Table)
        return table

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn SQLite's refusals to write (disk full, read-only file or folder, a lock held
        past the busy timeout) into a StorageError that says what could not be stored."""
        try:
            yield
        except sqlite3.OperationalError as error:
            raise StorageError(f"{what} cannot be written: {error}.") from error

