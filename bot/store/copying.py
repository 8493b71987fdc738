"""`policybot db copy`: a SQLite database moved into an empty PostgreSQL database, every table
the migrations made, ids kept.

The tables are read from the two schemas, not listed here, so a table a later migration adds
is copied without a change to this module, and one that exists on a single engine stops the
copy before anything is written. The source is read in one snapshot (a read transaction, so a
process writing meanwhile cannot make the copy inconsistent); the target is written in one
transaction, counts checked inside it, so a copy that fails leaves the target's tables empty.
The target's identity sequences are moved past the copied ids, so the next row inserted on
PostgreSQL does not collide with a copied one.

Every message names the target without its password (`shown_database_url`), and whatever the
driver says is scrubbed of the URL's secrets.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.store.connection import PostgresDatabase, SQLiteDatabase, StorageError, _identifier
from bot.store.liveness import ProcessMark

#: Rows sent to PostgreSQL per batch: large enough to cost few round trips, small enough
#: that a table of clause vectors is never held whole in memory.
BATCH = 500
#: Each engine's own bookkeeping of which migrations ran: made by migrating, never copied.
MIGRATION_RECORDS = {"_sqlite_migrations", "schema_migrations"}


@dataclass(frozen=True)
class CopyReport:
    #: table -> rows copied, in the order they were copied
    tables: dict[str, int]
    #: the target as it may be shown (no password)
    target: str
    #: what was left beside the SQLite file that the copy cannot carry (spool files)
    warnings: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def copied_tables(source: SQLiteDatabase) -> list[str]:
    """The SQLite database's own tables: not SQLite's internals, not the migrations' record,
    not a full-text index (a virtual table and its shadow tables: PostgreSQL's is a column
    it computes from the clauses)."""
    rows = source.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
    ).fetchall()
    virtual = [str(n) for n, sql in rows if str(sql or "").upper().startswith("CREATE VIRTUAL")]
    return [
        str(name)
        for name, _ in rows
        if not str(name).startswith("sqlite_")
        and str(name) not in MIGRATION_RECORDS
        and not any(str(name) == v or str(name).startswith(f"{v}_") for v in virtual)
    ]


def _sqlite_columns(source: SQLiteDatabase, table: str) -> list[str]:
    return [str(r[1]) for r in source.execute(f"PRAGMA table_info({_identifier(table)})")]


def _postgres_tables(target: PostgresDatabase) -> list[str]:
    return [t for t in target.table_names() if t not in MIGRATION_RECORDS]


def _postgres_columns(target: PostgresDatabase, table: str) -> dict[str, str]:
    """Columns a row is written to (not the generated ones: the full-text `terms`), and
    their types."""
    rows = target.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? AND is_generated = 'NEVER' "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def _identity_columns(target: PostgresDatabase, table: str) -> list[str]:
    rows = target.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? AND is_identity = 'YES'",
        [table],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _in_dependency_order(target: PostgresDatabase, tables: list[str]) -> list[str]:
    """Tables a foreign key points to before the tables pointing to them (clause vectors
    after clauses); otherwise by name, so the order is the same every time."""
    references = target.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
    ).fetchall()
    order: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for table in sorted(tables):
        order.add(table)
    for referencing, referenced in references:
        if referencing in tables and referenced in tables and referencing != referenced:
            order.add(str(referencing), str(referenced))
    return list(order.static_order())


def non_empty_tables(target: PostgresDatabase) -> dict[str, int]:
    """Tables of the target holding rows (the migrations' record aside): table -> rows."""
    counts: dict[str, int] = {}
    for table in _postgres_tables(target):
        count = int(target.execute(f"SELECT count(*) FROM {_quoted(table)}").fetchone()[0])
        if count:
            counts[table] = count
    return counts


def _quoted(table: str) -> str:
    # Another application's table in a shared database may have any name: quoted, with a
    # quote in it doubled, since it is read from the catalogue, not from us.
    return '"' + table.replace('"', '""') + '"'


def refuse_non_empty(target: PostgresDatabase, shown: str) -> None:
    found = non_empty_tables(target)
    if found:
        listed = ", ".join(f"{table} ({rows} rows)" for table, rows in sorted(found.items())[:5])
        more = f" and {len(found) - 5} more tables" if len(found) > 5 else ""
        raise StorageError(
            f"{shown} is not empty: {listed}{more}. policybot db copy writes only into an "
            "empty database, so nothing was copied; create a new database for it, or empty "
            "this one yourself if its rows are not needed."
        )


def still_running(path: Path) -> list[str]:
    """Tokens of the processes (`serve`, a command) still running on the SQLite file: what
    they write after the copy would not be in it."""
    mark = ProcessMark.beside(path)
    if mark.folder is None or not mark.folder.is_dir():
        return []
    return [p.name for p in sorted(mark.folder.iterdir()) if mark.running(p.name)]


def left_beside(path: Path) -> list[str]:
    """Files beside the SQLite file holding questions not yet in it, which the copy cannot
    carry: a `serve` that was killed leaves its spool of acknowledged questions, and the
    questions the database once refused wait in `.unlogged.jsonl`. Both are put into the
    database by the next `serve` on the SQLite file."""
    found: list[str] = []
    spool = path.with_name(path.name + ".received")
    if spool.is_dir() and any(spool.glob("*.jsonl")):
        found.append(f"{spool} holds acknowledged questions not yet in the database")
    unlogged = path.with_name(path.name + ".unlogged.jsonl")
    if unlogged.is_file() and unlogged.stat().st_size > 0:
        found.append(f"{unlogged} holds questions the database refused to log")
    return found


@contextmanager
def _snapshot(source: SQLiteDatabase) -> Iterator[None]:
    """One read transaction: every table read as of the same moment (WAL keeps that
    snapshot while other connections write)."""
    source.conn.execute("BEGIN")
    try:
        yield
    finally:
        source.conn.rollback()


def _rows(source: SQLiteDatabase, table: str, columns: list[str]) -> Iterator[list[Any]]:
    names = ", ".join(_identifier(c) for c in columns)
    cursor = source.conn.execute(f"SELECT {names} FROM {_identifier(table)} ORDER BY rowid")
    while batch := cursor.fetchmany(BATCH):
        yield from ([*row] for row in batch)


def _batches(rows: Iterator[list[Any]]) -> Iterator[list[list[Any]]]:
    batch: list[list[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def plan(source: SQLiteDatabase, target: PostgresDatabase) -> list[tuple[str, list[str]]]:
    """Each table to copy with its columns, in the order to copy them; a StorageError when
    the two schemas do not hold the same tables and columns (a migration one engine lacks)."""
    on_sqlite = copied_tables(source)
    on_postgres = _postgres_tables(target)
    only_sqlite = sorted(set(on_sqlite) - set(on_postgres))
    only_postgres = sorted(set(on_postgres) - set(on_sqlite))
    if only_sqlite or only_postgres:
        raise StorageError(
            "The two databases' schemas differ, so nothing was copied: "
            f"tables only in SQLite: {', '.join(only_sqlite) or 'none'}; "
            f"only in PostgreSQL: {', '.join(only_postgres) or 'none'}. "
            "Both were migrated by this version of policybot; this is a bug to report."
        )
    planned: list[tuple[str, list[str]]] = []
    for table in _in_dependency_order(target, on_sqlite):
        columns = _sqlite_columns(source, table)
        writable = _postgres_columns(target, table)
        if set(columns) != set(writable):
            raise StorageError(
                f"Table {table} has different columns on the two engines (SQLite only: "
                f"{', '.join(sorted(set(columns) - set(writable))) or 'none'}; PostgreSQL "
                f"only: {', '.join(sorted(set(writable) - set(columns))) or 'none'}), so "
                "nothing was copied; this is a bug to report."
            )
        planned.append((table, columns))
    return planned


def copy_into(source: SQLiteDatabase, target: PostgresDatabase, shown: str) -> dict[str, int]:
    """Every table of `source` into the migrated, empty `target`, in one transaction, counts
    checked before it commits: table -> rows copied. Driver errors propagate (the caller
    words them without secrets); the transaction is then rolled back."""
    copied: dict[str, int] = {}
    with _snapshot(source), target.atomic():
        # Checked again under the write lock: another process may have written since.
        refuse_non_empty(target, shown)
        for table, columns in plan(source, target):
            names = ", ".join(_identifier(c) for c in columns)
            marks = ", ".join("?" * len(columns))
            statement = f"INSERT INTO {_identifier(table)} ({names}) VALUES ({marks})"
            for batch in _batches(_rows(source, table, columns)):
                target.executemany(statement, batch)
            expected = int(
                source.execute(f"SELECT count(*) FROM {_identifier(table)}").fetchone()[0]
            )
            landed = int(target.execute(f"SELECT count(*) FROM {_identifier(table)}").fetchone()[0])
            if landed != expected:
                raise StorageError(
                    f"Table {table}: {expected} rows in SQLite but {landed} in {shown} after "
                    "copying, so nothing was copied."
                )
            for column in _identity_columns(target, table):
                # The next id PostgreSQL gives is one past the largest copied (1 when none).
                target.execute(
                    f"SELECT setval(pg_get_serial_sequence(?, ?), "
                    f"coalesce(max({_identifier(column)}), 0) + 1, false) "
                    f"FROM {_identifier(table)}",
                    [table, column],
                )
            copied[table] = landed
    return copied


def copy_database(
    source_path: Path, target_url: str, *, before: Callable[[Path], None] | None = None
) -> CopyReport:
    """`policybot db copy`: the SQLite file at `source_path` into the empty PostgreSQL
    database at `target_url` (migrated first); `before` runs on the file once no process is
    left on it (the CLI puts what a stopped `serve` left beside it into it). Refusals and
    failures are StorageErrors whose messages hold no secret of the URL; on any of them the
    target's tables stay empty."""
    import psycopg

    from bot.redaction import Redactor, database_url_secrets, shown_database_url
    from bot.store.database import Storage, is_postgres_url

    shown = shown_database_url(target_url)
    redactor = Redactor(database_url_secrets(target_url))
    if not is_postgres_url(target_url):
        raise StorageError(
            "--to must be a PostgreSQL URL (postgresql://user:password@host:port/database)."
        )
    if is_postgres_url(str(source_path)) or not source_path.is_file():
        raise StorageError(
            f"{source_path} is not a SQLite database file; --from names the file to copy "
            "(default: POLICYBOT_DB, else ./policybot.db)."
        )
    running = still_running(source_path)
    if running:
        raise StorageError(
            f"{len(running)} process(es) still run on {source_path} (policybot serve, or a "
            "command); stop them first, so that nothing they write after the copy is left "
            "behind. Nothing was copied."
        )
    if before is not None:
        before(source_path)
    warnings = tuple(left_beside(source_path))
    source = Storage.open(source_path)  # migrated, so its tables are this version's
    try:
        target = Storage.open_postgres(target_url, migrated=False)
        try:
            assert isinstance(target.db, PostgresDatabase)
            assert isinstance(source.db, SQLiteDatabase)
            try:
                refuse_non_empty(target.db, shown)
                target.migrate()
                tables = copy_into(source.db, target.db, shown)
            except psycopg.Error as error:
                reason = redactor.scrub(str(error).strip())
                raise StorageError(
                    f"Copying into {shown} failed, so nothing was copied: {reason}"
                ) from None
        finally:
            target.close()
    finally:
        source.close()
    return CopyReport(tables=tables, target=shown, warnings=warnings)
