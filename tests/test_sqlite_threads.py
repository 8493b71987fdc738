"""One SQLite connection shared by threads (the worker, the loop, background jobs): each
statement and each transaction has the connection to itself."""

from __future__ import annotations

import threading

import pytest

from bot.store.connection import SQLiteDatabase


def test_another_thread_s_write_does_not_join_a_transaction_that_rolls_back() -> None:
    """Before, a statement from another thread ran inside the open transaction on the same
    connection and was rolled back with it: a question logged meanwhile was lost."""
    db = SQLiteDatabase.memory()
    db.execute("CREATE TABLE logged (what TEXT)")
    inside, written = threading.Event(), threading.Event()

    def other_thread() -> None:
        inside.wait()
        db.execute("INSERT INTO logged VALUES ('from another thread')")
        written.set()

    writer = threading.Thread(target=other_thread)
    writer.start()
    with pytest.raises(RuntimeError), db.atomic():
        db.execute("INSERT INTO logged VALUES ('in the transaction')")
        inside.set()
        # The other thread's insert must wait for this transaction, not run inside it.
        assert not written.wait(0.3)
        raise RuntimeError("rolled back")
    writer.join(10)
    rows = [row[0] for row in db.execute("SELECT what FROM logged")]
    assert rows == ["from another thread"]
    db.close()


def test_rows_are_read_whole_and_once() -> None:
    db = SQLiteDatabase.memory()
    db.execute("CREATE TABLE n (v INTEGER)")
    db.executemany("INSERT INTO n VALUES (?)", [(1,), (2,), (3,)])
    rows = db.execute("SELECT v FROM n ORDER BY v")
    assert rows.fetchone() == (1,)
    assert rows.fetchall() == [(2,), (3,)]
    assert rows.fetchone() is None
    db.close()
