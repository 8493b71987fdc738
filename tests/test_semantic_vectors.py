"""Clause vectors are computed once: stored in the database, reused by every later process,
and never used for a text other than the one embedded."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.models import Clause, ParsedPolicy
from bot.retrieval import semantic
from bot.retrieval.semantic import (
    HybridRetriever,
    MiniLMEmbedder,
    build_retriever,
    clause_passage,
    semantic_available,
)
from bot.store.database import Storage

pytestmark = pytest.mark.skipif(not semantic_available(), reason="the model is not installed")

CLAUSES = (
    "Employees must not disclose revenue or quarterly results before publication.",
    "Staff may take short breaks to check personal accounts during the working day.",
    "Drivers must never hold a phone while driving a company vehicle.",
)
SMALL_POLICY = "# Conduct\n\n" + "".join(
    f"## {n}. Rule {n}\n\n{text}\n\n" for n, text in enumerate(CLAUSES, 1)
)


class CountingEmbedder:
    """The real engine, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self.inner = MiniLMEmbedder()
        self.name = self.inner.name
        self.dimensions = self.inner.dimensions
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> Any:
        self.texts += texts
        return self.inner.encode(texts)


@pytest.fixture
def new_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's cache of passages emptied, as a freshly started process has it."""
    monkeypatch.setattr(semantic, "_passage_vectors", {})
    yield


def stored_policy(path: Path | str, texts: Sequence[str] = CLAUSES) -> tuple[Storage, int]:
    storage = Storage.open(path)
    clauses = tuple(
        Clause(t, "1", "Rules", ("1 Rules",), ordinal=i, line_start=i, line_end=i)
        for i, t in enumerate(texts, 1)
    )
    version = storage.add_version(
        ParsedPolicy("conduct", "Conduct", "v1", (), clauses),
        source_name="conduct.md",
        digest=str(hash(texts)),
        uploaded_by="test",
    )
    storage.activate_version(version)
    return storage, version


def test_a_later_process_reads_the_vectors_instead_of_embedding(
    database_location: str, new_process: None
) -> None:
    """On either engine: on PostgreSQL, a replica reads the vectors another one stored."""
    storage, version = stored_policy(database_location)
    first = CountingEmbedder()
    answer = HybridRetriever(storage, first).retrieve(
        "can I hold my phone while driving", [version]
    )
    assert answer.ranked[0].stored.clause.text == CLAUSES[2]
    assert len(first.texts) == len(CLAUSES) + 1  # the clauses, then the question
    storage.close()

    semantic._passage_vectors.clear()  # another process: nothing in memory
    storage = Storage.open(database_location)
    later = CountingEmbedder()
    again = HybridRetriever(storage, later).retrieve("can I hold my phone while driving", [version])
    assert later.texts == ["can I hold my phone while driving"]  # the question only
    assert again == answer
    storage.close()


def test_stored_vectors_are_the_engines_own(tmp_path: Path, new_process: None) -> None:
    storage, version = stored_policy(tmp_path / "p.db")
    embedder = CountingEmbedder()
    HybridRetriever(storage, embedder).retrieve("phones", [version])
    clauses = storage.clauses([version])
    stored = storage.clause_vectors([c.id for c in clauses], embedder.name)
    assert set(stored) == {c.id for c in clauses}
    for clause in clauses:
        row = np.frombuffer(stored[clause.id].vector, dtype="<f4")
        expected = embedder.inner.encode([clause_passage(clause)])[0]
        assert float(row @ expected) > 0.99999
    assert storage.clause_vectors([c.id for c in clauses], "another-model") == {}


def test_a_vector_stored_for_other_text_is_not_used(tmp_path: Path, new_process: None) -> None:
    storage, version = stored_policy(tmp_path / "p.db")
    embedder = CountingEmbedder()
    HybridRetriever(storage, embedder).retrieve("phones", [version])
    driving = next(c for c in storage.clauses([version]) if c.clause.text == CLAUSES[2])
    # The drivers' clause's row now holds the revenue clause's vector and digest.
    revenue = next(c for c in storage.clauses([version]) if c.clause.text == CLAUSES[0])
    wrong = storage.clause_vectors([revenue.id], embedder.name)[revenue.id]
    storage.db.execute(
        "UPDATE clause_vectors SET vector = ?, passage_digest = ? WHERE clause_id = ?",
        [wrong.vector, wrong.passage_digest, driving.id],
    )
    storage.db.conn.commit()
    semantic._passage_vectors.clear()
    later = CountingEmbedder()
    answer = HybridRetriever(storage, later).retrieve("hold a phone while driving", [version])
    assert clause_passage(driving) in later.texts  # embedded again, not taken from the row
    assert answer.ranked[0].stored.id == driving.id


def test_discarding_an_upload_deletes_its_vectors(
    database_location: str, new_process: None
) -> None:
    storage, _active = stored_policy(database_location)
    staged = storage.add_version(
        ParsedPolicy("conduct", "Conduct", "v2", (), (Clause("Staff may post photos.", "1", "R"),)),
        source_name="conduct.md",
        digest="v2",
        uploaded_by="test",
    )
    embedder = CountingEmbedder()
    HybridRetriever(storage, embedder).retrieve("photos", [staged])
    assert storage.db.execute("SELECT count(*) FROM clause_vectors").fetchone()[0] == 1
    storage.delete_staged_version(staged)
    # SQLite may hand the freed clause id to the next clause: no vector may wait for it.
    assert storage.db.execute("SELECT count(*) FROM clause_vectors").fetchone()[0] == 0
    storage.close()


def test_the_default_retriever_is_the_hybrid_and_stores_vectors_from_the_cli(
    tmp_path: Path,
) -> None:
    assert isinstance(build_retriever(Storage.memory(), "auto"), HybridRetriever)
    db, policy = tmp_path / "cli.db", tmp_path / "conduct.md"
    policy.write_text(SMALL_POLICY, encoding="utf-8")
    env = {"PATH": "", "POLICYBOT_DB": str(db), "POLICYBOT_RETRIEVER": "auto"}

    def policybot(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent.parent,
        )
        return done.stdout

    policybot("policy", "load", str(policy))
    for _ in range(2):  # two processes: the second reads what the first stored
        reply = json.loads(
            policybot("ask", "--json", "may I hold my phone while driving a company vehicle?")
        )
        assert reply["citations"][0]["text"] == CLAUSES[2], reply
    storage = Storage.open(db)
    counts = storage.db.execute("SELECT count(*), count(DISTINCT model) FROM clause_vectors")
    assert counts.fetchone() == (len(CLAUSES), 1)
