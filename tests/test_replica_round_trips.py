"""What a question costs a replica on PostgreSQL, and what it waits for.

Counted at the network boundary: the replica (the real server app, Slack configured against
the fake Slack API) reaches PostgreSQL through a loopback TCP relay that reads the frontend
half of the wire protocol and counts each round trip the client asks for (a Sync ending an
extended-protocol statement, or a simple Query). And another replica's serialized write
transaction (one holding the write lock) must not hold up the questions this one answers:
received, logged and replied while the lock stays taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from bot.answering.outcome import Outcome
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.store.connection import WRITE_LOCK
from bot.store.database import Storage
from tests.fakes.slack_api import GUARD
from tests.fakes.slack_harness import SlackHarness, slack_server
from tests.reliability import record

#: Questions the bundled policy answers (no review group: grouping is a serialized write).
COVERED = [
    "can I tweet about our quarterly revenue?",
    "may I share our unreleased roadmap on LinkedIn?",
    "can I post pictures from the team offsite on instagram?",
]
ROUND_TRIPS = "PostgreSQL: round trips per question, counted on the wire"
NOT_QUEUED = "PostgreSQL: questions answered while another replica holds the write lock"
COMMAND = "pytest tests/test_replica_round_trips.py"
#: The budget per answered question through Slack (received, read, retrieved, logged,
#: replied): 21.5 on the wire before each of those steps was one statement.
BUDGET = 12


class WireCounter:
    """A loopback TCP relay to PostgreSQL counting the round trips clients ask for (threads
    and blocking sockets: the server under test opens its connections with blocking calls
    on the test's event loop)."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.round_trips = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.listen_port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def _start(self, target: Callable[..., None], *args: socket.socket) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.upstream)
                self._sockets += [client, server]
                self._start(self._client_to_server, client, server)
                self._start(self._server_to_client, server, client)

    @staticmethod
    def _read(source: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = source.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            # The startup message has no type byte (sslmode and gssencmode are off, so it is
            # the first); every message after it is a type byte and a length.
            head = self._read(client, 4)
            server.sendall(head + self._read(client, struct.unpack("!I", head)[0] - 4))
            while True:
                head = self._read(client, 5)
                server.sendall(head + self._read(client, struct.unpack("!I", head[1:])[0] - 4))
                if head[:1] in (b"S", b"Q"):  # Sync, Query: the client waits for the server
                    self.round_trips += 1

    @staticmethod
    def _server_to_client(server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)

    @contextlib.contextmanager
    def running(self) -> Iterator[WireCounter]:
        self._start(self._accept)
        try:
            yield self
        finally:
            self._listener.close()
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            for thread in self._threads:
                thread.join(GUARD)


def through(url: str, port: int) -> str:
    """`url` on the relay's port, without TLS or GSS negotiation (loopback)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    query = "sslmode=disable&gssencmode=disable"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def counts(url: str) -> tuple[int, int]:
    """(questions logged, received questions replied to), read beside the server."""
    with psycopg.connect(url, autocommit=True) as conn:
        logged = conn.execute("SELECT count(*) FROM questions").fetchone()
        replied = conn.execute(
            "SELECT count(*) FROM received_questions WHERE state = 'replied'"
        ).fetchone()
    assert logged is not None and replied is not None
    return int(logged[0]), int(replied[0])


async def until(url: str, logged: int, replied: int) -> tuple[int, int]:
    """Poll the database until that many are logged and replied, or GUARD passes."""
    deadline = time.monotonic() + GUARD
    seen = await asyncio.to_thread(counts, url)
    while seen < (logged, replied) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        seen = await asyncio.to_thread(counts, url)
    return seen


async def ask_all(slack: SlackHarness, questions: list[str], first_user: int) -> None:
    for n, question in enumerate(questions):
        response = await slack.dm(question, user=f"U{first_user + n:05d}")
        assert response.status_code == 200


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_a_question_costs_a_replica_few_round_trips_to_postgresql(
    database_location: str, tmp_path: Path
) -> None:
    host, port = urlsplit(database_location).hostname, urlsplit(database_location).port
    assert host is not None and port is not None
    counter = WireCounter(host, port)
    with counter.running():
        url = through(database_location, counter.listen_port)
        settings = Settings(db_path=str(tmp_path / "replica.db"), retriever="lexical")
        async with slack_server(settings.with_db(url), on_disk=True) as slack:
            await ask_all(slack, COVERED, 0)  # warm: the pseudonym key, the vocabulary
            await slack.api.wait_for("chat.postMessage", len(COVERED))
            assert await until(database_location, len(COVERED), len(COVERED)) == (3, 3)
            asked = COVERED * 4
            before = counter.round_trips
            await ask_all(slack, asked, 100)
            await slack.api.wait_for("chat.postMessage", len(COVERED) + len(asked))
            total = len(COVERED) + len(asked)
            assert await until(database_location, total, total) == (total, total)
            per_question = (counter.round_trips - before) / len(asked)
    record(
        ROUND_TRIPS,
        COMMAND + " -k round_trips",
        questions=len(asked),
        round_trips_per_question=round(per_question, 1),
        budget=BUDGET,
    )
    assert per_question <= BUDGET


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_questions_are_answered_and_logged_while_another_replica_holds_the_write_lock(
    database_location: str, tmp_path: Path
) -> None:
    """Before, every write transaction took the one write lock: a question's receipt, its
    log row and its reply each queued behind any other replica's write (here for good: the
    lock is held until every question is logged, or GUARD passes)."""
    settings = Settings(db_path=str(tmp_path / "replica.db"), retriever="lexical")
    async with slack_server(settings.with_db(database_location), on_disk=True) as slack:
        await ask_all(slack, COVERED[:1], 0)  # warm: the pseudonym key is written once
        await slack.api.wait_for("chat.postMessage", 1)
        assert await until(database_location, 1, 1) == (1, 1)
        other_replica = psycopg.connect(database_location, autocommit=True)
        try:
            other_replica.execute("BEGIN")
            other_replica.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            await ask_all(slack, COVERED, 10)
            total = 1 + len(COVERED)
            logged, replied = await until(database_location, total, total)
            answers = len(slack.api["chat.postMessage"])
            other_replica.execute("ROLLBACK")
        finally:
            other_replica.close()
    record(
        NOT_QUEUED,
        COMMAND + " -k write_lock",
        questions=len(COVERED),
        answered=answers - 1,
        logged=logged - 1,
        replied=replied - 1,
    )
    assert (logged, replied) == (total, total)


def other_replica_may_lock(other: psycopg.Connection[Any]) -> bool:
    """Whether another connection could take the write lock now (and gives it back)."""
    row = other.execute("SELECT pg_try_advisory_lock(%s)", [WRITE_LOCK]).fetchone()
    assert row is not None
    if row[0]:
        other.execute("SELECT pg_advisory_unlock(%s)", [WRITE_LOCK])
    return bool(row[0])


@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_serialized_part_of_an_unserialized_transaction_takes_the_write_lock(
    new_storage: Callable[[], Storage],
) -> None:
    """A transaction that need not follow the others takes no lock, until a part of it that
    must (a question's receipt calling into something that reads and then writes): from
    then to its end it holds the lock, and a part rolled back to its savepoint gives it up."""
    storage = new_storage()
    db = storage.db
    assert isinstance(storage.location, str)
    with psycopg.connect(storage.location, autocommit=True) as other:
        with db.atomic(serialized=False):
            db.execute("SELECT 1")
            assert other_replica_may_lock(other)
            with db.atomic():
                assert not other_replica_may_lock(other)
            assert not other_replica_may_lock(other)  # to the end of the outermost
        assert other_replica_may_lock(other)
        with db.atomic(serialized=False):
            with pytest.raises(RuntimeError), db.atomic():
                raise RuntimeError("a serialized part that failed")
            assert other_replica_may_lock(other)
            with db.atomic():
                assert not other_replica_may_lock(other)
        with db.atomic():  # a serialized transaction, as before
            assert not other_replica_may_lock(other)
        assert other_replica_may_lock(other)


DOGS = b"""# Pets at work

## 1. Dogs in the office

Employees may bring a well-behaved dog to the office on Fridays, provided it stays at their
desk and their team agrees; dogs are never allowed in meeting rooms or the kitchen.
"""


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_a_version_another_replica_activates_answers_this_replicas_next_question(
    database_location: str, tmp_path: Path
) -> None:
    """Each replica keeps what never changes (a clause's text and stems, a version's word
    counts), never which versions are active: the next question after another replica
    activates a version is answered from it, though this replica had already answered from
    the version it replaced."""
    settings = Settings(db_path=str(tmp_path / "unused.db"), retriever="lexical")
    answering = PolicyBot.create(settings.with_db(database_location))
    activating = PolicyBot.create(settings.with_db(database_location))
    question = "can I bring my dog to the office on Fridays?"
    try:
        answering.ensure_policy()
        before = await answering.ask(IncomingQuestion(question, "slack", "U1", "D1"))
        await answering.ask(IncomingQuestion(COVERED[0], "slack", "U1", "D1"))  # caches warm
        activating.policies.upload("pets.md", DOGS, activate=True, trusted=True)
        after = await answering.ask(IncomingQuestion(question, "slack", "U2", "D2"))
    finally:
        for bot in (answering, activating):
            await bot.aclose()
            bot.storage.close()
    assert "pets" not in before.policy_version
    assert after.outcome is Outcome.ANSWERED and "pets" in after.policy_version
    assert any("dog" in c.text.lower() for c in after.citations)
