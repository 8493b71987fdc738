"""Clause vectors: each clause's embedding per model, stored once and read by every process.

The store keeps bytes, not arrays: what a vector means (float32, little-endian, unit length)
is the retriever's business, and bot/store/ does not import numpy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.store.connection import Connected

#: Clause ids per SELECT, below SQLite's limit on bound parameters.
_READ_BATCH = 500


@dataclass(frozen=True)
class ClauseVector:
    clause_id: int
    passage_digest: str  # SHA-256 of the text embedded, hex
    dimensions: int
    vector: bytes  # little-endian float32


class VectorStore(Connected):
    def clause_vectors(self, clause_ids: Iterable[int], model: str) -> dict[int, ClauseVector]:
        """The stored vectors of these clauses under `model`, by clause id (absent if none)."""
        ids = list(clause_ids)
        found: dict[int, ClauseVector] = {}
        for start in range(0, len(ids), _READ_BATCH):
            batch = ids[start : start + _READ_BATCH]
            rows = self.db.execute(
                "SELECT clause_id, passage_digest, dimensions, vector FROM clause_vectors "
                f"WHERE model = ? AND clause_id IN ({','.join('?' * len(batch))})",
                [model, *batch],
            ).fetchall()
            for clause_id, digest, dimensions, vector in rows:
                found[clause_id] = ClauseVector(clause_id, digest, dimensions, bytes(vector))
        return found

    def save_clause_vectors(self, model: str, vectors: Iterable[ClauseVector]) -> None:
        """Store (or replace) vectors under `model`, in one transaction. A vector for a clause
        that no longer exists is dropped: nothing would ever delete it."""
        rows = [(v.clause_id, model, v.passage_digest, v.dimensions, v.vector) for v in vectors]
        if not rows:
            return
        with self._writing("The clause vectors"), self.db.atomic():
            self.db.executemany(
                "INSERT INTO clause_vectors "
                "(clause_id, model, passage_digest, dimensions, vector) "
                "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM clauses WHERE id = ?) "
                "ON CONFLICT (clause_id, model) DO UPDATE SET "
                "passage_digest = excluded.passage_digest, dimensions = excluded.dimensions, "
                "vector = excluded.vector",
                [(*row, row[0]) for row in rows],
            )
