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
CANDIDATES = 40
#: Weight of BM25 (normalised to the best candidate) against coverage in the final rank.
BM25_SHARE = 0.4
#: Terms in more than this share of all clauses are left out of the FTS5 query (they still
#: count in coverage): they add little to BM25 but make every query touch most of the index.
COMMON_TERM_SHARE = 0.05
#: Below this many clauses every term is searched; pruning only matters for large stores.
PRUNE_FROM_CLAUSES = 2000

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


@lru_cache(maxsize=262144)
def _stems_of(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words(text))


def clause_stems(stored: StoredClause) -> frozenset[str]:
    """The stems of a clause and its headings; cached, since stored clauses never change."""
    clause = stored.clause
    return _stems_of(f"{clause.text} {' '.join(clause.heading_path)}")


class Retriever(Protocol):
    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval: ...


@dataclass(frozen=True)
class LexicalScore:
    stored: StoredClause
    rank: float  # BM25 (normalised to the best candidate) blended with coverage
    coverage: float  # share of the question's (rarity-weighted) words the clause covers
    bm25: float  # normalised to the best candidate, 0..1


class LexicalRetriever:
    """FTS5 BM25 with stemming, query expansion and coverage reranking."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval:
        versions = tuple(version_ids)
        top = self.score(question, versions)[:limit]
        confidence = max((s.coverage for s in top[:1]), default=0.0)
        ranked = tuple(ScoredClause(s.stored, s.rank) for s in top)
        return Retrieval(question, ranked, confidence, versions)

    def score(
        self,
        question: str,
        version_ids: Sequence[int],
        candidates: int = CANDIDATES,
        extra: Sequence[StoredClause] = (),
    ) -> list[LexicalScore]:
        """BM25 candidates (plus `extra` clauses found another way), best first."""
        groups = term_groups(question)
        versions = tuple(version_ids)
        if not groups or not versions:
            return []
        stems = {m for g in groups for m in g.members}
        counts = self.storage.term_document_counts(stems)
        total = max(self.storage.total_clause_count(), 1)
        idf = self._idf(groups, counts, total)
        fts_terms = sorted(stems)
        if total >= PRUNE_FROM_CLAUSES:
            rare = [t for t in fts_terms if counts.get(t, 0) <= COMMON_TERM_SHARE * total]
            fts_terms = rare or fts_terms
        match = " OR ".join(f'"{term}"' for term in fts_terms)
        hits = self.storage.search_clauses(match, versions, candidates)
        clauses = self.storage.clauses_by_id(cid for cid, _ in hits)
        bm25_by_id = dict(hits)
        for stored in extra:
            clauses.setdefault(stored.id, stored)
        if not clauses:
            return []
        best_bm25 = max(bm25_by_id.values(), default=0.0) or 1.0
        scored = []
        for clause_id, stored in clauses.items():
            bm25 = bm25_by_id.get(clause_id, 0.0) / best_bm25
            coverage = self._coverage(groups, idf, stored)
            rank = BM25_SHARE * bm25 + (1 - BM25_SHARE) * coverage
            scored.append(LexicalScore(stored, rank, coverage, bm25))
        scored.sort(key=lambda s: (-s.rank, s.stored.id))
        return scored

    @staticmethod
    def _idf(groups: list[TermGroup], counts: dict[str, int], total: int) -> dict[str, float]:
        """Rarity of each question word, from the best-known of its members."""
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
        present = clause_stems(stored)
        gained = total = 0.0
        for group in groups:
            weight = idf[group.word]
            total += weight
            gained += weight * max((w for m, w in group.members.items() if m in present), default=0)
        return gained / total if total else 0.0
