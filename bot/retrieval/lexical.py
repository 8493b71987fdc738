"""Rank policy clauses for a question, with a confidence that the policy covers it.

Pipeline: content words -> everyday-to-policy expansion -> FTS5 BM25 candidates over the
active versions -> rerank by how much of the question (weighted by rarity) each clause and
its headings cover. Rarity is counted over the active versions only, so an old version's
words neither dilute nor rescue a question.

The confidence is a probability-like 0..1 built from several signals (`Evidence`), combined
by a small logistic model whose coefficients are fitted on the tuning sets by
`python -m bench fit` and committed here as constants. The strongest single signals are how
much of the question the best clause covers and how much of it the policy never mentions at
all ("cafeteria", "parking").
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from bot.models import Retrieval, ScoredClause, StoredClause
from bot.retrieval.terms import fts_phrase
from bot.retrieval.terms import stem as stem
from bot.retrieval.vocabulary import EXPANSIONS, content_words, without_pleasantries, words
from bot.store.database import Storage

#: How much a match on an expansion ("tweet" -> "post") counts against a match on the word.
EXPANSION_WEIGHT = 0.6
#: How many FTS5 candidates are reranked.
CANDIDATES = 40
#: Weight of BM25 (normalised to the best candidate) against coverage in the final rank.
BM25_SHARE = 0.4
#: FTS5 bm25() column weights: clause text, its section title, its whole heading path.
#: `python -m bench sweep` measures alternatives on the tuning sets.
FTS_WEIGHTS = (1.0, 0.5, 0.3)
#: Terms in more than this share of the active clauses are left out of the FTS5 query (they
#: still count in coverage): they add little to BM25 but make every query touch most of the
#: index.
COMMON_TERM_SHARE = 0.05
#: Below this many clauses every term is searched; pruning only matters for large stores.
PRUNE_FROM_CLAUSES = 2000
#: Stored clauses a retriever keeps by id, most recently found first: a stored clause never
#: changes, so the candidates of the next question need no round trip to the database. Far
#: more than a policy's clauses that questions find, and a few MB at most.
CLAUSE_CACHE = 4096

#: The logistic model behind the confidence: intercept, then one coefficient per
#: `Evidence.FEATURES` entry. Fitted by `python -m bench fit` on the tuning sets only.
CONFIDENCE_INTERCEPT = -8.5085
CONFIDENCE_COEFFICIENTS = (3.9765, 1.3803, 0.3479, -1.1418, 0.7620, 4.6823, 3.1095)
#: The fitted model's probability that best separates covered from uncovered questions on the
#: tuning sets; `calibrated` sends it to DECISION_POINT (the default POLICYBOT_MIN_CONFIDENCE),
#: so one threshold fits every retriever.
RAW_DECISION_POINT = 0.7640
DECISION_POINT = 0.4

#: Beyond this many content words a question's length says nothing more about its coverage.
LENGTH_CAP = 10

#: Chat markup and links (Slack's <!channel>, <https://…|label>, <@U123>; bare URLs): their
#: words are not the question's, and would make a question look longer and better matched.
_MARKUP = re.compile(r"<[^<>]*>|\bhttps?://\S+")


@dataclass(frozen=True)
class TermGroup:
    """A question word with its expansions: matching any member covers the word."""

    word: str
    members: dict[str, float]  # stem -> weight (1.0 for the word itself)


def term_groups(question: str) -> list[TermGroup]:
    groups = []
    for word in content_words(without_pleasantries(_MARKUP.sub(" ", question))):
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


def _section_key(stored: StoredClause) -> tuple[int, tuple[str, ...]]:
    return stored.version_id, stored.clause.heading_path


@dataclass(frozen=True)
class VersionVocabulary:
    """What one stored version says, counted once: its clauses never change."""

    clauses: int
    document_frequency: Counter[str]  # stem -> clauses (with headings) containing it
    sections: dict[tuple[int, tuple[str, ...]], frozenset[str]]  # every stem of each section

    @classmethod
    def of(cls, clauses: Iterable[StoredClause]) -> VersionVocabulary:
        df: Counter[str] = Counter()
        sections: dict[tuple[int, tuple[str, ...]], set[str]] = {}
        count = 0
        for stored in clauses:
            count += 1
            clause = stored.clause
            # Not through the clause_stems cache: a large version would flush it.
            present = {stem(w) for w in words(f"{clause.text} {' '.join(clause.heading_path)}")}
            df.update(present)
            sections.setdefault(_section_key(stored), set()).update(present)
        return cls(count, df, {k: frozenset(v) for k, v in sections.items()})


class Retriever(Protocol):
    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval: ...


@dataclass(frozen=True)
class LexicalScore:
    stored: StoredClause
    rank: float  # BM25 (normalised to the best candidate) blended with coverage
    coverage: float  # share of the question's (rarity-weighted) words the clause covers
    bm25: float  # normalised to the best candidate, 0..1


@dataclass(frozen=True)
class Evidence:
    """The signals the confidence is built from, for the best-ranked clause."""

    FEATURES = (
        "coverage",
        "section_coverage",
        "unknown",
        "matched",
        "margin",
        "words",
        "bm25",
    )

    coverage: float  # share of the question (by rarity) the best clause covers
    section_coverage: float  # the same for the best clause's whole section
    unknown: float  # share of the question (by rarity) no active clause mentions at all
    matched: float  # log(1 + rarity mass the best clause matches): absolute match strength
    margin: float  # rank of the best clause minus the runner-up's
    words: float  # log(1 + content words in the question)
    bm25: float  # the best raw BM25 score per unit of question rarity

    def vector(self) -> tuple[float, ...]:
        return tuple(float(getattr(self, name)) for name in self.FEATURES)


NO_EVIDENCE = Evidence(0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)


def logistic(intercept: float, coefficients: Sequence[float], features: Sequence[float]) -> float:
    z = intercept + sum(c * x for c, x in zip(coefficients, features, strict=True))
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def calibrated(raw: float, raw_decision_point: float = RAW_DECISION_POINT) -> float:
    """Monotone map of [0, 1] onto itself sending the raw decision point to DECISION_POINT."""
    raw = min(max(raw, 0.0), 1.0)
    if raw < raw_decision_point:
        return raw * DECISION_POINT / raw_decision_point
    return DECISION_POINT + (raw - raw_decision_point) * (1 - DECISION_POINT) / (
        1 - raw_decision_point
    )


def lexical_confidence(evidence: Evidence) -> float:
    return calibrated(logistic(CONFIDENCE_INTERCEPT, CONFIDENCE_COEFFICIENTS, evidence.vector()))


@dataclass(frozen=True)
class Assessment:
    """Ranked candidates with the evidence about the best one."""

    scores: list[LexicalScore]
    evidence: Evidence
    #: The question's words and their rarity, for measuring any other clause or section.
    groups: tuple[TermGroup, ...] = ()
    idf: dict[str, float] = field(default_factory=dict)


class LexicalRetriever:
    """FTS5 BM25 with stemming, query expansion and coverage reranking."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._vocabularies: dict[int, VersionVocabulary] = {}
        self._clauses: OrderedDict[int, StoredClause] = OrderedDict()
        self._lock = threading.Lock()

    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval:
        versions = tuple(version_ids)
        assessment = self.assess(question, versions)
        top = assessment.scores[:limit]
        confidence = lexical_confidence(assessment.evidence) if top else 0.0
        ranked = tuple(ScoredClause(s.stored, s.rank) for s in top)
        return Retrieval(question, ranked, confidence, versions)

    def vocabulary(self, version_id: int) -> VersionVocabulary:
        with self._lock:
            found = self._vocabularies.get(version_id)
            if found is None:
                found = VersionVocabulary.of(self.storage.clauses([version_id]))
                self._vocabularies[version_id] = found
            return found

    def clauses_by_id(self, ids: Iterable[int], versions: Sequence[int]) -> dict[int, StoredClause]:
        """The stored clauses of `versions` with these ids, in the order asked: from those
        kept, the others read (and kept)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[int, StoredClause] = {}
        with self._lock:
            for clause_id in wanted:
                kept = self._clauses.get(clause_id)
                if kept is not None and kept.version_id in versions:
                    self._clauses.move_to_end(clause_id)
                    found[clause_id] = kept
        missing = [i for i in wanted if i not in found]
        if missing:
            read = self.storage.clauses_by_id(missing)
            with self._lock:
                for clause_id, stored in read.items():
                    self._clauses[clause_id] = stored
                    self._clauses.move_to_end(clause_id)
                while len(self._clauses) > CLAUSE_CACHE:
                    self._clauses.popitem(last=False)
            found.update(read)
        return {i: found[i] for i in wanted if i in found}

    def document_frequency(self, versions: Sequence[int], terms: Iterable[str]) -> dict[str, int]:
        vocabularies = [self.vocabulary(v) for v in versions]
        return {t: sum(v.document_frequency.get(t, 0) for v in vocabularies) for t in terms}

    def clause_total(self, versions: Sequence[int]) -> int:
        """How many clauses the versions hold (at least 1: it divides rarity)."""
        return max(sum(self.vocabulary(v).clauses for v in versions), 1)

    def section_stems(self, stored: StoredClause) -> frozenset[str]:
        return self.vocabulary(stored.version_id).sections.get(
            _section_key(stored), clause_stems(stored)
        )

    def assess(
        self,
        question: str,
        version_ids: Sequence[int],
        candidates: int = CANDIDATES,
        extra: Sequence[StoredClause] = (),
    ) -> Assessment:
        groups = term_groups(question)
        versions = tuple(version_ids)
        if not groups or not versions:
            return Assessment([], NO_EVIDENCE)
        stems = {m for g in groups for m in g.members}
        counts = self.document_frequency(versions, stems)
        total = self.clause_total(versions)
        idf = self._idf(groups, counts, total)
        fts_terms = sorted(t for t in stems if counts.get(t, 0))
        if total >= PRUNE_FROM_CLAUSES:
            rare = [t for t in fts_terms if counts[t] <= COMMON_TERM_SHARE * total]
            fts_terms = rare or fts_terms
        match = " OR ".join(fts_phrase(term) for term in fts_terms)
        hits = (
            self.storage.search_clauses(match, versions, candidates, FTS_WEIGHTS)
            if fts_terms
            else []
        )
        clauses = self.clauses_by_id((cid for cid, _ in hits), versions)
        bm25_by_id = dict(hits)
        for stored in extra:
            clauses.setdefault(stored.id, stored)
        if not clauses:
            return Assessment([], NO_EVIDENCE)
        best_bm25 = max(bm25_by_id.values(), default=0.0) or 1.0
        scored = []
        for clause_id, stored in clauses.items():
            bm25 = bm25_by_id.get(clause_id, 0.0) / best_bm25
            coverage = self._coverage(groups, idf, clause_stems(stored))
            rank = BM25_SHARE * bm25 + (1 - BM25_SHARE) * coverage
            scored.append(LexicalScore(stored, rank, coverage, bm25))
        scored.sort(key=lambda s: (-s.rank, s.stored.id))
        evidence = self._evidence(groups, idf, counts, scored, bm25_by_id)
        return Assessment(scored, evidence, tuple(groups), idf)

    def section_coverage(self, assessment: Assessment, stored: StoredClause) -> float:
        """The share of the assessed question (by rarity) a clause's whole section uses."""
        groups = list(assessment.groups)
        return self._coverage(groups, assessment.idf, self.section_stems(stored))

    def rarest_covered(self, assessment: Assessment, stored: StoredClause) -> float:
        """How well a clause covers the question's rarest word that the policy uses at all
        (1 for the word itself, an expansion's weight for an expansion, 0 without it)."""
        used = self.vocabulary(stored.version_id).document_frequency
        # A word the policy never uses is the rarest of all, and no clause could use it.
        known = [g for g in assessment.groups if any(used.get(m, 0) for m in g.members)]
        if not known:
            return 0.0
        rarest = max(known, key=lambda g: assessment.idf.get(g.word, 0.0))
        present = clause_stems(stored)
        return max((w for m, w in rarest.members.items() if m in present), default=0.0)

    def _evidence(
        self,
        groups: list[TermGroup],
        idf: dict[str, float],
        counts: dict[str, int],
        scored: list[LexicalScore],
        bm25_by_id: dict[int, float],
    ) -> Evidence:
        best = scored[0]
        mass = sum(idf.values()) or 1.0
        unknown = sum(idf[g.word] for g in groups if not any(counts.get(m, 0) for m in g.members))
        runner_up = scored[1].rank if len(scored) > 1 else 0.0
        return Evidence(
            coverage=best.coverage,
            section_coverage=self._coverage(groups, idf, self.section_stems(best.stored)),
            unknown=unknown / mass,
            matched=math.log1p(best.coverage * mass),
            margin=best.rank - runner_up,
            words=math.log1p(min(len(groups), LENGTH_CAP)),
            bm25=bm25_by_id.get(best.stored.id, 0.0) / mass,
        )

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
    def _coverage(groups: list[TermGroup], idf: dict[str, float], present: frozenset[str]) -> float:
        gained = total = 0.0
        for group in groups:
            weight = idf[group.word]
            total += weight
            gained += weight * max((w for m, w in group.members.items() if m in present), default=0)
        return gained / total if total else 0.0
