"""Which commits wait for the disk: a received question's always, its log entry and reply mark
not (they are redone from the received row after a restart), anything else always.

SQLite's statements are watched with the connection's trace callback, so the test sees the
`PRAGMA synchronous` each transaction committed under, on a real database file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.database import Storage

QUESTION = {"kind": "dm", "user_id": "U1", "conversation": "D1", "text": "may I post?"}


def _record(asker: str) -> dict[str, object]:
    return {
        "platform": "slack",
        "asker": asker,
        "text": "may I post?",
        "answered": 1,
        "status": "answered",
        "citations": [],
    }


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    opened = Storage.open(tmp_path / "policybot.db")
    yield opened
    opened.close()


def _commits(storage: Storage) -> tuple[list[str], list[int]]:
    """Start watching: the `PRAGMA synchronous` level in force at each COMMIT."""
    levels: list[int] = []
    statements: list[str] = []
    level = [int(storage.db.execute("PRAGMA synchronous").fetchone()[0])]

    def seen(sql: str) -> None:
        statements.append(sql)
        text = sql.strip().upper()
        if text.startswith("PRAGMA SYNCHRONOUS ="):
            level[0] = {"NORMAL": 1, "FULL": 2}[text.rsplit("=", 1)[1].strip()]
        elif text == "COMMIT":
            levels.append(level[0])

    storage.db.conn.set_trace_callback(seen)
    return statements, levels


def test_a_received_question_commits_durably_its_log_entry_and_reply_mark_do_not(
    storage: Storage,
) -> None:
    assert int(storage.db.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    asker = storage.pseudonym("slack", "U1")  # the first takes the pseudonym key, durably
    _, levels = _commits(storage)
    received = storage.receive("slack", "event:E1", QUESTION, taken_by="t")
    assert received is not None and received > 0
    storage.log_question(_record(asker), received_id=received)
    storage.mark_replied(received)
    assert levels == [2, 1, 1]  # FULL, NORMAL, NORMAL
    # and the connection is back to FULL for whatever comes next
    assert int(storage.db.execute("PRAGMA synchronous").fetchone()[0]) == 2


def test_a_question_with_no_received_row_is_logged_durably(storage: Storage) -> None:
    # The command line's `ask` and the console: nothing would redo a lost log entry.
    asker = storage.pseudonym("cli", "someone")
    _, levels = _commits(storage)
    storage.log_question(_record(asker))
    assert levels == [2]


def test_a_failed_lazy_transaction_leaves_the_connection_durable(storage: Storage) -> None:
    with pytest.raises(RuntimeError), storage.db.atomic(durable=False):
        storage.db.execute("SELECT 1")
        raise RuntimeError("refused mid-transaction")
    assert int(storage.db.execute("PRAGMA synchronous").fetchone()[0]) == 2
    _, levels = _commits(storage)
    storage.receive("slack", "event:E2", QUESTION, taken_by="t")
    assert levels == [2]
