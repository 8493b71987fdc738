from __future__ import annotations

from pathlib import Path

import pytest

from bot.ingest import read_policy
from bot.storage import Storage, StorageError, content_hash, migrations

POLICY = (
    b"# P\n\n## 1. Scope\n\nThis policy applies to every employee who uses social media"
    b" in any way that mentions the company.\n"
)


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    first = Storage.open(path)
    version = first.schema_version
    assert version == len(migrations._migrations) >= 1
    first.close()
    again = Storage.open(path)
    assert again.schema_version == version
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # m005 dropped the unused FTS5 vocabulary view; the index itself stays.
    tables = set(again.db.table_names())
    assert "clauses_fts" in tables and "clauses_fts_vocab" not in tables


def test_unusable_database_path_gives_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="folder"):
        Storage.open(tmp_path)
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="Cannot use the database"):
        Storage.open(tmp_path / "junk.db")


def test_versions_activate_atomically_and_search_sees_only_given_versions() -> None:
    storage = Storage.memory()
    parsed = read_policy("p.md", POLICY)
    v1 = storage.add_version(
        parsed, source_name="p.md", digest=content_hash(POLICY), uploaded_by="t"
    )
    v2 = storage.add_version(parsed, source_name="p.md", digest="other", uploaded_by="t")
    storage.activate_version(v1)
    storage.activate_version(v2)
    assert [v.id for v in storage.active_versions()] == [v2]
    assert storage.version(v1).status == "retired"
    hits = storage.search_clauses('"employee"', [v2], 10)
    assert hits and all(storage.clauses_by_id([h[0]])[h[0]].version_id == v2 for h in hits)
    assert storage.search_clauses('"employee" AND (', [v2], 10) == []  # bad syntax finds nothing


def test_question_log_keeps_pseudonyms_apart_from_reply_addresses() -> None:
    storage = Storage.memory()
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
    assert row["asker"] == asker and row["citations"] == [] and row["answered"] is False
    assert storage.reply_address(qid) == {
        "platform": "slack",
        "user_id": "U123",
        "conversation": "D1",
    }
