from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.reading.ingest import read_policy
from bot.retrieval.terms import fts_phrase, stem
from bot.store import schema_pg
from bot.store.connection import PostgresDatabase
from bot.store.database import (
    DELIVERY_PRUNE_INTERVAL,
    DELIVERY_RETENTION,
    Storage,
    StorageError,
    content_hash,
    migrations,
)
from tests.postgres import Cluster

POLICY = (
    b"# P\n\n## 1. Scope\n\nThis policy applies to every employee who uses social media"
    b" in any way that mentions the company.\n"
)


def test_migrations_are_recorded_and_idempotent(database_location: str, engine: str) -> None:
    first = Storage.open(database_location)
    version = first.schema_version
    assert version == len(migrations._migrations) >= 1
    assert first.migrate() == []  # nothing left to apply
    first.close()
    again = Storage.open(database_location)
    assert again.schema_version == version and again.engine == engine
    tables = set(again.db.table_names())
    assert "handled_deliveries" in tables  # m006
    if engine == "sqlite":
        assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # m005 dropped the unused FTS5 vocabulary view; the index itself stays.
        assert "clauses_fts" in tables and "clauses_fts_vocab" not in tables
    again.close()


def test_every_migration_has_its_postgresql_form_under_the_same_name() -> None:
    """One migration is one logical change on both engines: a new SQLite migration without its
    PostgreSQL form (or one out of order) would leave the engines with different schemas."""
    assert schema_pg.names() == [m.name for m in migrations._migrations]


def test_postgresql_applies_each_migration_once_when_processes_start_together(
    postgres_cluster: Cluster,
) -> None:
    url = postgres_cluster.empty_database()
    workers = 4
    ready = threading.Barrier(workers)

    def start() -> list[str]:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            database = PostgresDatabase(conn)
            ready.wait()
            return schema_pg.migrate(database)

    with ThreadPoolExecutor(workers) as pool:
        applied = [name for names in pool.map(lambda _: start(), range(workers)) for name in names]
    assert sorted(applied) == sorted(schema_pg.names())  # every migration, once in all
    storage = Storage.open(url)
    assert storage.schema_version == len(schema_pg.names())
    storage.close()
    postgres_cluster.drop(url)


def test_unusable_database_path_gives_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="folder"):
        Storage.open(tmp_path)
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="Cannot use the database"):
        Storage.open(tmp_path / "junk.db")


def test_versions_activate_atomically_and_search_sees_only_given_versions(
    new_storage: Callable[[], Storage],
) -> None:
    storage = new_storage()
    parsed = read_policy("p.md", POLICY)
    v1 = storage.add_version(
        parsed, source_name="p.md", digest=content_hash(POLICY), uploaded_by="t"
    )
    v2 = storage.add_version(parsed, source_name="p.md", digest="other", uploaded_by="t")
    storage.activate_version(v1)
    storage.activate_version(v2)
    assert [v.id for v in storage.active_versions()] == [v2]
    assert storage.version(v1).status == "retired"
    hits = storage.search_clauses(fts_phrase(stem("employee")), [v2], 10)  # the index holds stems
    assert hits and all(storage.clauses_by_id([h[0]])[h[0]].version_id == v2 for h in hits)
    assert storage.search_clauses('"employee" AND (', [v2], 10) == []  # bad syntax finds nothing


def test_question_log_keeps_pseudonyms_apart_from_reply_addresses(
    new_storage: Callable[[], Storage],
) -> None:
    storage = new_storage()
    asker = storage.pseudonym("slack", "U123")
    assert asker.startswith("asker-") and "U123" not in asker
    assert storage.pseudonym("slack", "U123") == asker
    qid = storage.log_question(
        {
            "platform": "slack",
            "asker": asker,
            "text": "q?",
            "answered": 0,
            "status": "open",
            "citations": [],
        },
        reply_to={"platform": "slack", "user_id": "U123", "conversation": "D1"},
    )
    row = storage.question(qid)
    assert row.asker == asker and row.citations == [] and row.answered is False
    assert storage.reply_address(qid) == {
        "platform": "slack",
        "user_id": "U123",
        "conversation": "D1",
    }


def test_a_delivery_is_first_once_and_forgotten_after_the_retention_window(
    new_storage: Callable[[], Storage],
) -> None:
    storage = new_storage()
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert storage.claim_delivery("slack", "event:Ev1", now=start)
    assert not storage.claim_delivery("slack", "event:Ev1", now=start + timedelta(minutes=5))
    # The same key from another platform is another delivery.
    assert storage.claim_delivery("teams", "event:Ev1", now=start + timedelta(minutes=5))
    later = start + DELIVERY_RETENTION - timedelta(minutes=1)
    assert not storage.claim_delivery("slack", "event:Ev1", now=later)
    assert storage.claim_delivery("slack", "event:Ev2", now=later)

    # Past the window, the next insert prunes: Ev1 and the Teams key go, Ev2 stays.
    after = start + DELIVERY_RETENTION + DELIVERY_PRUNE_INTERVAL
    assert storage.claim_delivery("slack", "event:Ev3", now=after)
    keys = [r[0] for r in storage.db.execute("SELECT key FROM handled_deliveries ORDER BY key")]
    assert keys == ["event:Ev2", "event:Ev3"]
    assert storage.claim_delivery("slack", "event:Ev1", now=after)  # forgotten, so new again


def test_pruning_runs_once_per_interval_not_on_every_insert(
    new_storage: Callable[[], Storage],
) -> None:
    storage = new_storage()
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    storage.claim_delivery("slack", "old", now=start)  # the process's first insert prunes
    just_after = start + DELIVERY_RETENTION + timedelta(minutes=1)
    storage.claim_delivery("slack", "a", now=just_after)  # prunes: the last prune is long ago
    assert not storage.claim_delivery("slack", "a", now=just_after)
    storage.db.execute(
        "INSERT INTO handled_deliveries VALUES ('slack', 'stale', ?)",
        [(start - timedelta(days=1)).isoformat(timespec="seconds")],
    )
    # Within the interval no insert deletes anything; the first one after it does.
    storage.claim_delivery("slack", "b", now=just_after + DELIVERY_PRUNE_INTERVAL / 2)
    assert storage.db.execute("SELECT count(*) FROM handled_deliveries").fetchone()[0] == 3
    storage.claim_delivery("slack", "c", now=just_after + DELIVERY_PRUNE_INTERVAL)
    keys = {r[0] for r in storage.db.execute("SELECT key FROM handled_deliveries")}
    assert keys == {"a", "b", "c"}
    assert storage.prune_deliveries(just_after + DELIVERY_RETENTION * 2) == 3


def test_processes_racing_on_one_database_take_each_delivery_exactly_once(
    database_location: str,
) -> None:
    path = database_location
    Storage.open(path).close()  # migrated once, as the first process to start would
    workers = 4
    keys = [f"event:Ev{n:04d}" for n in range(200)]
    ready = threading.Barrier(workers)

    def take_all() -> list[str]:
        # One connection per worker, as each server process has its own.
        storage = Storage.open(path)
        try:
            ready.wait()
            return [key for key in keys if storage.claim_delivery("slack", key)]
        finally:
            storage.close()

    with ThreadPoolExecutor(workers) as pool:
        taken = [key for result in pool.map(lambda _: take_all(), range(workers)) for key in result]
    assert sorted(taken) == keys  # every key taken, none twice


def test_no_part_of_storage_shadows_another() -> None:
    """Storage is its parts' mixins on one connection: a name defined in two of them would
    silently hide one (the first in the method resolution order wins)."""
    parts = [base for base in Storage.__mro__ if base.__module__.startswith("bot.store.")]
    assert len(parts) == 8  # Storage, its six parts, Connected
    owners: dict[str, str] = {}
    clashes = []
    for part in parts:
        for name in vars(part):
            if name.startswith("__") and name.endswith("__"):
                continue
            if name in owners:
                clashes.append(f"{name}: {owners[name]} and {part.__name__}")
            owners[name] = part.__name__
    assert clashes == []
