"""The connection every part of `Storage` shares, on either engine: SQLite (a file, or memory)
or PostgreSQL (`DATABASE_URL`). The parts write one SQL for both, with `?` placeholders
(translated here for PostgreSQL), insert through `insert` / `insert_id`, and group writes in
`transaction`; what differs between the engines lives in the two `Database` classes below,
and the engine's refusals to write become a `StorageError`."""

from __future__ import annotations

import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import sqlite_utils

if TYPE_CHECKING:
    import psycopg

#: The engines `Storage` runs on, as `/healthz` and `policybot migrate` name them.
SQLITE, POSTGRESQL = "sqlite", "postgresql"
#: The key of the PostgreSQL advisory lock a serialized write transaction takes (see
#: `PostgresDatabase.atomic`); migrations take their own (bot.store.schema_pg).
WRITE_LOCK = 0x706F6C6963790001
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class StorageError(RuntimeError):
    """The database cannot be opened or written; the message says what to do."""


class Rows(Protocol):
    """What `Database.execute` returns: a DB-API cursor, read the same way on both engines."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class FetchedRows:
    """A SQLite statement's rows, read whole: `Rows` without the connection behind it, read
    once in order as a cursor is."""

    def __init__(self, rows: list[Any], rowcount: int, description: Any) -> None:
        self._rows = iter(rows)
        self.rowcount = rowcount
        self.description = description

    def fetchone(self) -> Any:
        return next(self._rows, None)

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return self._rows


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def lease_stamp(moment: datetime) -> str:
    """A claim's lease end as stored: ISO text in UTC to the millisecond, one format for
    every lease, so that text order is time order on both engines."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _identifier(name: str) -> str:
    # Table and column names come from the code, never from a user; checked all the same,
    # since they are the one part of a statement that is not a bound parameter.
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a column or table name: {name!r}")
    return name


def column_names(columns: Sequence[str]) -> str:
    """Column names for a statement, comma separated, each checked to be a plain name."""
    return ", ".join(_identifier(c) for c in columns)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {_identifier(table)} ({column_names(columns)}) VALUES ({marks})"


class Database(ABC):
    """One connection to the database, the same calls on either engine."""

    engine: ClassVar[str]
    #: The driver's own connection (sqlite3's or psycopg's), for what only one engine does.
    conn: Any

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement with `?` placeholders."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @abstractmethod
    def insert_id(self, table: str, row: Mapping[str, Any]) -> int:
        """Insert a row into a table keyed by `id` and return the id it was given."""

    @abstractmethod
    def atomic(self, serialized: bool = True, *, durable: bool = True) -> Any:
        """A write transaction (a savepoint inside one already open); a context manager.
        `serialized`: it follows every other serialized one on the database, as it must when
        it reads and then writes what it read. A transaction whose every statement is safe
        beside any other writer (an insert arbitrated by a unique key, an UPDATE whose WHERE
        is its own condition) passes False, so replicas' such writes do not queue.

        `durable` False: the commit does not wait for the disk (SQLite's synchronous NORMAL,
        PostgreSQL's synchronous_commit off). A power cut may then undo it, never half of
        it, and only with every later commit: the write-ahead log is one sequence, so the
        next durable commit makes it durable too. For what can be redone from a durable row
        (a question's log entry and reply mark, both redone from its received row after a
        restart): a commit that waits for an fsync costs ~4 ms here, and two per answer
        made the single worker, not the processor, the limit on answers per second."""

    @abstractmethod
    def write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> Rows:
        """One statement that is a whole write transaction, or part of the one open (on
        PostgreSQL without a savepoint of its own: a failure fails that transaction).
        `durable` as for `atomic` (SQLite only: on PostgreSQL the one statement commits on
        its own, with no transaction to set it in)."""

    @abstractmethod
    def write_id(self, table: str, row: Mapping[str, Any]) -> int:
        """`insert_id` as `write` runs a statement."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def table_names(self) -> list[str]: ...

    @abstractmethod
    def concat_distinct(self, expression: str) -> str:
        """The SQL aggregate joining the distinct values of `expression` with commas."""

    def insert(self, table: str, row: Mapping[str, Any]) -> None:
        self.execute(_insert_sql(table, list(row)), list(row.values()))

    def insert_all(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Insert rows that all have the same columns."""
        batch = list(rows)
        if batch:
            columns = list(batch[0])
            self.executemany(
                _insert_sql(table, columns), ([row[c] for c in columns] for row in batch)
            )


class SQLiteDatabase(Database):
    """A SQLite connection; `utils` is sqlite_utils over it, for the SQLite migrations."""

    engine = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.utils = sqlite_utils.Database(conn)
        # One thread at a time on the connection: Python's sqlite3 objects are not safe to
        # use from two threads at once (their statement cache is corrupted, and a close
        # during another thread's statement frees what it is using: seen as a segmentation
        # fault). Held across a transaction too, so no other thread's statement joins it.
        self._lock = threading.RLock()

    @classmethod
    def memory(cls) -> SQLiteDatabase:
        return cls(sqlite3.connect(":memory:", check_same_thread=False))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self._lock:
            cursor = self.conn.execute(sql, list(params))
            # Read whole under the lock: a cursor stepped later would touch the connection
            # from whichever thread reads it.
            return FetchedRows(cursor.fetchall(), cursor.rowcount, cursor.description)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self.conn.executemany(sql, rows)

    def insert_id(self, table: str, row: Mapping[str, Any]) -> int:
        with self._lock:
            cursor = self.conn.execute(_insert_sql(table, list(row)), list(row.values()))
            assert cursor.lastrowid is not None
            return int(cursor.lastrowid)

    @contextmanager
    def atomic(self, serialized: bool = True, *, durable: bool = True) -> Iterator[None]:
        """A deferred transaction that reads and then writes cannot wait for the lock: if
        another connection (`policybot policy load` beside a running server) committed after
        its first read, SQLite refuses the write at once with "database is locked", busy
        timeout or not. BEGIN IMMEDIATE waits for the lock up front instead, within the busy
        timeout. SQLite has one writer at a time whatever `serialized` says. The connection
        commits with synchronous FULL (each commit's log fsynced); a transaction not `durable`
        commits with NORMAL, set only around it."""
        with self._lock:
            if self.conn.in_transaction:
                with self.utils.atomic():  # nested: a savepoint inside the open transaction
                    yield
                return
            if not durable:
                self.conn.execute("PRAGMA synchronous = NORMAL")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    self.conn.rollback()
                    raise
                else:
                    try:
                        self.conn.execute("COMMIT")
                    except BaseException:
                        self.conn.rollback()
                        raise
            finally:
                if not durable:
                    self.conn.execute("PRAGMA synchronous = FULL")

    def write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> Rows:
        # sqlite3 would leave the statement's implicit transaction open: commit it here.
        with self.atomic(durable=durable):
            return self.execute(sql, params)

    def write_id(self, table: str, row: Mapping[str, Any]) -> int:
        with self.atomic():
            return self.insert_id(table, row)

    def close(self) -> None:
        with self._lock:  # after any statement under way on another thread
            self.conn.close()

    def table_names(self) -> list[str]:
        return list(self.utils.table_names())

    def concat_distinct(self, expression: str) -> str:
        return f"group_concat(DISTINCT {expression})"


@lru_cache(maxsize=512)
def postgres_sql(sql: str) -> str:
    """A statement written for both engines, as psycopg takes it: `?` outside quotes is its
    `%s`, and a literal `%` is doubled."""
    out: list[str] = []
    quote = ""
    for character in sql:
        if quote:
            if character == quote:
                quote = ""
        elif character in "'\"":
            quote = character
        elif character == "?":
            out.append("%s")
            continue
        out.append("%%" if character == "%" else character)
    return "".join(out)


def _postgres_value(value: Any) -> Any:
    # The schema keeps SQLite's integer flags; PostgreSQL will not put a boolean in them.
    return int(value) if isinstance(value, bool) else value


class PostgresDatabase(Database):
    """A PostgreSQL connection (psycopg 3) in autocommit mode: a read is its own statement,
    and `atomic` is the one way to group writes, so no connection sits idle in a
    transaction."""

    engine = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        #: Whether the transaction open on the connection holds WRITE_LOCK.
        self._serialized = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        # Prepared on the server once run the connection's prepare_threshold times (from
        # DATABASE_URL, see bot.config.prepare_threshold_of).
        cursor: Rows = self.conn.execute(postgres_sql(sql), [_postgres_value(p) for p in params])
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(
                postgres_sql(sql), [[_postgres_value(v) for v in row] for row in rows]
            )

    def insert_id(self, table: str, row: Mapping[str, Any]) -> int:
        cursor = self.execute(_insert_sql(table, list(row)) + " RETURNING id", list(row.values()))
        return int(cursor.fetchone()[0])

    @contextmanager
    def atomic(self, serialized: bool = True, *, durable: bool = True) -> Iterator[None]:
        """Serialized write transactions take one advisory lock, so they follow each other
        as SQLite's BEGIN IMMEDIATE makes them: a transaction that reads and then writes (the
        next version number, a conditional take-over, a question joining a group) sees the
        last one's writes, on every replica. The lock is held to the end of the outermost
        transaction, taken by the first part of it that needs it. Reads, and transactions
        that are not serialized, take no lock: the hot path of every question (received,
        logged, replied) would otherwise queue each replica behind the others' commits. Not
        `durable`: synchronous_commit off for this transaction only (SET LOCAL)."""
        outermost = self.conn.info.transaction_status == _idle()
        locked_here = False
        try:
            with self.conn.transaction():
                if serialized and not self._serialized:
                    self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
                    self._serialized = locked_here = True
                if outermost and not durable:
                    self.conn.execute("SET LOCAL synchronous_commit TO OFF")
                yield
        except BaseException:
            if locked_here:  # rolled back to the savepoint, which released the lock too
                self._serialized = False
            raise
        finally:
            if outermost:
                self._serialized = False

    def write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> Rows:
        # Autocommit: outside a transaction one statement is one, with no BEGIN or COMMIT
        # round trip (and so nowhere to turn synchronous_commit off for it alone).
        return self.execute(sql, params)

    def write_id(self, table: str, row: Mapping[str, Any]) -> int:
        return self.insert_id(table, row)

    def close(self) -> None:
        self.conn.close()

    def table_names(self) -> list[str]:
        rows = self.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def concat_distinct(self, expression: str) -> str:
        return f"string_agg(DISTINCT {expression}, ',')"


def _idle() -> Any:
    from psycopg.pq import TransactionStatus

    return TransactionStatus.IDLE


def _write_refusals() -> tuple[type[Exception], ...]:
    """The errors that mean the database would not take a write (on either engine)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return (sqlite3.OperationalError,)
    from psycopg import errors

    # Besides a lost connection or a full disk (OperationalError): a server that became a
    # read-only standby (a failover), and a role whose INSERT right was revoked (a hosted
    # database over its plan's quota).
    return (
        sqlite3.OperationalError,
        psycopg.OperationalError,
        errors.ReadOnlySqlTransaction,
        errors.InsufficientPrivilege,
    )


class Connected:
    """What each part of `Storage` works through: the database and its write guard."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: The database file; None for an in-memory database or PostgreSQL.
        self.path: Path | None = None
        #: What `Storage.open` opens again (a file, a URL); None: an in-memory database.
        self.location: Path | str | None = None

    @property
    def engine(self) -> str:
        return self.db.engine

    def close(self) -> None:
        self.db.close()

    def backup(self, destination: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup), safe while serving."""
        if not isinstance(self.db, SQLiteDatabase):
            raise StorageError(
                "policybot backup copies a SQLite database; back up PostgreSQL with pg_dump "
                "or your platform's backups."
            )
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
    def transaction(self, serialized: bool = True) -> Iterator[None]:
        with self._writing("The database"), self.db.atomic(serialized):
            yield

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn the engine's refusals to write (disk full, read-only file or folder, a lock
        held past the busy timeout, a lost connection) into a StorageError that says what
        could not be stored."""
        try:
            yield
        except _write_refusals() as error:
            raise StorageError(f"{what} cannot be written: {error}.") from error
