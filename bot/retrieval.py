"""Rank policy clauses for a question, with a confidence that the policy covers it.

Pipeline: content words -> everyday-to-policy expansion -> FTS5 BM25 candidates over the
active versions -> rerank by how much of the question (weighted by rarity) each clause and
its headings cover. The coverage of the best clause is the confidence: a question whose key
words appear nowhere in the policy ("cafeteria", "parking") scores low whatever BM25 says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import snowballstemmer

from bot.models import Retrieval, ScoredClause, StoredClause
from bot.storage import Storage
from bot.vocabulary import EXPANSIONS, content_words, words

#: How much a match on an expansion ("tweet" -> "post") counts against a match on the word.
EXPANSION_WEIGHT = 0.6
#: How many FTS5 candidates are reranked.
CANDIDATES = 60
#: Weight of BM25 (normalised to the best candidate) against coverage in the final rank.
BM25_SHARE = 0.4

_stemmer = snowballstemmer.stemmer("porter")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


@dataclass(frozen=True)
class TermGroup:
    """A question word with its expansions: matching any member covers the word."""

    word: str
    members: dict[str, float]  # stem -> weight (1.0 for the word itself)


def term_groups(question: str) -> list[TermGroup]:
    groups = []
    for word in content_words(question):
        members = {stem(word): 1.0}
        for expansion in EXPANSIONS.get(word, ()):
            members.setdefault(stem(expansion), EXPANSION_WEIGHT)
        groups.append(TermGroup(word, members))
    return groups


class Retriever(Protocol):
    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval: ...


class LexicalRetriever:
    """FTS5 BM25 with stemming, query expansion and coverage reranking."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval:
        groups = term_groups(question)
        versions = tuple(version_ids)
        if not groups or not versions:
            return Retrieval(question, (), 0.0, versions)
        fts_terms = sorted({m for g in groups for m in g.members})
        match = " OR ".join(f'"{term}"' for term in fts_terms)
        hits = self.storage.search_clauses(match, versions, CANDIDATES)
        if not hits:
            return Retrieval(question, (), 0.0, versions)
        clauses = self.storage.clauses_by_id(cid for cid, _ in hits)
        idf = self._idf(groups)
        best_bm25 = max(score for _, score in hits) or 1.0
        scored = []
        for clause_id, bm25 in hits:
            stored = clauses[clause_id]
            coverage = self._coverage(groups, idf, stored)
            rank = BM25_SHARE * (bm25 / best_bm25) + (1 - BM25_SHARE) * coverage
            scored.append((rank, coverage, stored))
        scored.sort(key=lambda item: (-item[0], item[2].id))
        top = scored[:limit]
        confidence = top[0][1] if top else 0.0
        ranked = tuple(ScoredClause(stored, rank) for rank, _, stored in top)
        return Retrieval(question, ranked, confidence, versions)

    def _idf(self, groups: list[TermGroup]) -> dict[str, float]:
        """Rarity of each question word, from the best-known of its members."""
        stems = {m for g in groups for m in g.members}
        counts = self.storage.term_document_counts(stems)
        total = max(self.storage.total_clause_count(), 1)
        out = {}
        for group in groups:
            own = counts.get(stem(group.word), 0)
            known = [counts[m] for m in group.members if counts.get(m)]
            # A word the policy never uses keeps full weight, so its absence lowers coverage.
            df = own if own else (min(known) if known else 0)
            out[group.word] = math.log(1 + (total - df + 0.5) / (df + 0.5))
        return out

    @staticmethod
    def _coverage(groups: list[TermGroup], idf: dict[str, float], stored: StoredClause) -> float:
        clause = stored.clause
        present = {stem(w) for w in words(f"{clause.text} {' '.join(clause.heading_path)}")}
        gained = total = 0.0
        for group in groups:
            weight = idf[group.word]
            total += weight
            gained += weight * max((w for m, w in group.members.items() if m in present), default=0)
        return gained / total if total else 0.0
