"""Peer retrievers measured beside ours on the same stored clauses (never on the bot's path).

- `BM25Peer`: plain BM25 (bm25s, Lucene variant) over each clause's text and headings, with
  the same word splitting, stopwords and Porter stemmer we use, so only the method differs.
- `DensePeer`: all-MiniLM-L6-v2 sentence embeddings (the model `make setup` installs, run in numpy),
  cosine similarity of question and clause.

Each peer's confidence is its raw top score; the bench calibrates a "not covered" threshold
for every retriever the same way, on the tuning sets only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bm25s
import numpy as np

from bot.models import Retrieval, ScoredClause, StoredClause
from bot.retrieval.lexical import stem
from bot.retrieval.vocabulary import content_words, words
from bot.store.database import Storage


def clause_document(stored: StoredClause) -> str:
    clause = stored.clause
    return f"{' '.join(clause.heading_path)} {clause.text}".strip()


def bm25_tokens(text: str) -> list[str]:
    return [stem(w) for w in content_words(text)] or [stem(w) for w in words(text)] or ["_"]


class _PerVersions:
    """Builds an index once per set of versions, on first use."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._indexes: dict[tuple[int, ...], Any] = {}

    def index(self, version_ids: Sequence[int]) -> Any:
        key = tuple(version_ids)
        if key not in self._indexes:
            self._indexes[key] = self.build(self.storage.clauses(key))
        return self._indexes[key]

    def build(self, clauses: list[StoredClause]) -> Any:
        raise NotImplementedError


class BM25Peer(_PerVersions):
    name = "bm25s"

    def build(self, clauses: list[StoredClause]) -> tuple[bm25s.BM25, list[StoredClause]]:
        index = bm25s.BM25()
        index.index([bm25_tokens(clause_document(c)) for c in clauses], show_progress=False)
        return index, clauses

    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval:
        index, clauses = self.index(version_ids)
        tokens = [stem(w) for w in content_words(question)]
        if not tokens or not clauses:
            return Retrieval(question, (), 0.0, tuple(version_ids))
        scores = index.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")[:limit]
        ranked = tuple(ScoredClause(clauses[i], float(scores[i])) for i in order if scores[i] > 0)
        return Retrieval(question, ranked, ranked[0].score if ranked else 0.0, tuple(version_ids))


class DensePeer(_PerVersions):
    name = "MiniLM"

    def __init__(self, storage: Storage, embedder: Any) -> None:
        super().__init__(storage)
        self.embedder = embedder  # bot.retrieval.semantic.Embedder: unit vectors, one row per text

    def build(self, clauses: list[StoredClause]) -> tuple[np.ndarray, list[StoredClause]]:
        vectors = self.embedder.encode([clause_document(c) for c in clauses])
        return np.asarray(vectors, dtype=np.float32), clauses

    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval:
        matrix, clauses = self.index(version_ids)
        if not clauses:
            return Retrieval(question, (), 0.0, tuple(version_ids))
        query = self.embedder.encode([question])[0]
        scores = matrix @ np.asarray(query, dtype=np.float32)
        order = np.argsort(-scores, kind="stable")[:limit]
        ranked = tuple(ScoredClause(clauses[i], float(scores[i])) for i in order)
        return Retrieval(question, ranked, ranked[0].score, tuple(version_ids))
