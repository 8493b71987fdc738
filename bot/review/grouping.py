"""How alike two questions are: their term profiles (stems, vocabulary, everyday synonyms,
weighted by rarity in the policy), with the cosine similarity of their embeddings when the
semantic retriever has an embedder, and the similarity that decides whether one joins a group.

The constants were chosen on the tuning half of the labeled grouping set
(eval/grouping-tuning.jsonl) and are measured on the held-out half by `python -m bench grouping`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from bot.retrieval.lexical import stem, term_groups
from bot.retrieval.vocabulary import (
    GENERIC_QUESTION_WORDS,
    TOPIC_SYNONYMS,
    without_pleasantries,
)

log = logging.getLogger(__name__)

#: A question joins a group at this similarity or above (0..1), by words alone. Not lowered to
#: the tuning half's best F1 (0.15): there words alone form as many pairs of different topics
#: as of one (precision 0.37), and one reviewed answer goes to everyone in a group.
JOIN_THRESHOLD = 0.45
#: With question embeddings: the share of the word similarity their cosine similarity takes,
#: and the threshold for the blend, chosen together on the tuning half (best pairwise F1).
EMBEDDING_SHARE = 0.9
EMBEDDING_JOIN_THRESHOLD = 0.3
#: A later question gets an answered group's reviewed answer only at this similarity or above,
#: whichever way it is measured: stricter than joining, because the asker gets that answer
#: with no reviewer having seen the question (joining's threshold before the grouping set).
REVIEWED_ANSWER_THRESHOLD = 0.45
#: How much sitting closest to the same policy section counts, against the words (0..1).
SECTION_SHARE = 0.15
#: Below this retrieval confidence the closest section is a guess and is not counted.
SECTION_MIN_CONFIDENCE = 0.3
#: How much a generic word ("days", "office") counts against a word of the same rarity.
GENERIC_WEIGHT = 0.25
#: How much an everyday synonym ("reimburse" for "expense") counts against the word itself.
SYNONYM_WEIGHT = 0.9


@lru_cache(maxsize=1)
def generic_stems() -> frozenset[str]:
    return frozenset(stem(word) for word in GENERIC_QUESTION_WORDS)


#: Stem -> the stems of its everyday synonyms.
Synonyms = Mapping[str, frozenset[str]]


def synonym_stems(groups: Iterable[Iterable[str]]) -> dict[str, frozenset[str]]:
    """Each stem of a group of everyday synonyms -> the other stems of its group."""
    out: dict[str, set[str]] = {}
    for synonyms in groups:
        stems = {stem(word) for word in synonyms}
        for s in stems:
            out.setdefault(s, set()).update(stems - {s})
    return {s: frozenset(others) for s, others in out.items()}


@lru_cache(maxsize=1)
def shipped_synonyms() -> Synonyms:
    return synonym_stems(TOPIC_SYNONYMS)


# -- term profiles ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TermProfile:
    """The words of one question, or of every question in a group, with what each can match
    (stored as a group's `signature` column; one concept, this one name in the code).

    `terms` maps a content word's stem to (how many members use it, the stems that count as
    matching it with their weights); `reach` maps a stem to the sum over members of the best
    weight with which that member matches it.
    """

    size: int
    terms: dict[str, tuple[int, dict[str, float]]]
    reach: dict[str, float]

    @classmethod
    def of(cls, text: str, synonyms: Synonyms | None = None) -> TermProfile:
        """`synonyms`: the shipped everyday synonyms unless given (the bench leaves some out)."""
        synonyms = shipped_synonyms() if synonyms is None else synonyms
        terms: dict[str, tuple[int, dict[str, float]]] = {}
        for group in term_groups(text):
            key = stem(group.word)
            members = dict(group.members)
            for synonym in sorted(synonyms.get(key, ())):
                members[synonym] = max(members.get(synonym, 0.0), SYNONYM_WEIGHT)
            if key in terms:  # two words with one stem ("post", "posting")
                _, known = terms[key]
                members = {m: max(w, known.get(m, 0.0)) for m, w in {**known, **members}.items()}
            terms[key] = (1, members)
        reach: dict[str, float] = {}
        for _, members in terms.values():
            for m, w in members.items():
                reach[m] = max(reach.get(m, 0.0), w)
        return cls(1 if terms else 0, terms, reach)

    def merged(self, other: TermProfile) -> TermProfile:
        terms = dict(self.terms)
        for key, (count, members) in other.terms.items():
            if key in terms:
                known_count, known = terms[key]
                union = {m: max(w, known.get(m, 0.0)) for m, w in {**known, **members}.items()}
                terms[key] = (known_count + count, union)
            else:
                terms[key] = (count, dict(members))
        reach = dict(self.reach)
        for m, w in other.reach.items():
            reach[m] = reach.get(m, 0.0) + w
        return TermProfile(self.size + other.size, terms, reach)

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "terms": {
                k: [c, {m: round(w, 3) for m, w in ms.items()}]
                for k, (c, ms) in sorted(self.terms.items())
            },
            "reach": {m: round(w, 3) for m, w in sorted(self.reach.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TermProfile:
        terms = {
            k: (int(v[0]), {m: float(w) for m, w in v[1].items()})
            for k, v in data.get("terms", {}).items()
        }
        reach = {m: float(w) for m, w in data.get("reach", {}).items()}
        return cls(int(data.get("size", 0)), terms, reach)


def _covered(a: TermProfile, b: TermProfile, idf: Mapping[str, float]) -> float:
    """How much of A's words (weighted by rarity and by how many of A use them) B matches."""
    if not a.size or not b.size:
        return 0.0
    gained = total = 0.0
    for key, (count, members) in a.terms.items():
        weight = idf.get(key, 1.0) * count / a.size
        total += weight
        best = max(
            (w * min(b.reach.get(m, 0.0) / b.size, 1.0) for m, w in members.items()), default=0.0
        )
        gained += weight * best
    return gained / total if total else 0.0


def word_similarity(a: TermProfile, b: TermProfile, idf: Mapping[str, float]) -> float:
    """Symmetric: the mean of how much of A B covers and how much of B A covers."""
    return (_covered(a, b, idf) + _covered(b, a, idf)) / 2


# -- groups ----------------------------------------------------------------------------------


def blended(words: float, cosine: float | None, embedding_share: float) -> float:
    """The word similarity, or with embeddings its blend with their cosine similarity (a
    negative cosine counts as none)."""
    if cosine is None:
        return words
    return (1 - embedding_share) * words + embedding_share * max(cosine, 0.0)


# -- rules -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupingRules:
    """What placing a question uses: the everyday synonyms, the joining threshold, and how much
    embeddings count when there are any."""

    synonyms: Synonyms = field(default_factory=shipped_synonyms)
    join_threshold: float = JOIN_THRESHOLD
    embedding_share: float = EMBEDDING_SHARE
    embedding_join_threshold: float = EMBEDDING_JOIN_THRESHOLD
    reviewed_answer_threshold: float = REVIEWED_ANSWER_THRESHOLD

    def threshold(self, with_embeddings: bool, status: str = "open") -> float:
        """The similarity a question needs to join an open group, or to get the reviewed
        answer of an answered one."""
        join = self.embedding_join_threshold if with_embeddings else self.join_threshold
        return max(join, self.reviewed_answer_threshold) if status == "answered" else join


# -- embeddings ------------------------------------------------------------------------------
class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length vectors, one row per text."""


class QuestionVectors:
    """Question embeddings for grouping, from the semantic retriever's embedder, kept in this
    process by text (nothing is stored: a restarted process embeds a group's members again).
    Once the embedder fails, `of` answers None for good and grouping goes by words alone."""

    #: Texts whose vectors are kept; a busy review list asks about the same texts again and
    #: again (every open group's members, for each new question).
    CACHE = 20_000

    def __init__(self, embedder: Callable[[], Embedder]) -> None:
        self._embedder = embedder
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.broken = False

    def of(self, texts: Sequence[str]) -> list[Any] | None:
        """One unit vector (a numpy array) per text, or None once embedding has failed."""
        if self.broken:
            return None
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            missing = [t for t in dict.fromkeys(texts) if t not in found]
            if missing:
                try:
                    import numpy as np

                    encoded = self._embedder().encode([without_pleasantries(t) for t in missing])
                    rows = np.asarray(encoded, dtype=np.float32)
                    if rows.shape[0] != len(missing):
                        raise ValueError(f"{rows.shape[0]} vectors for {len(missing)} texts")
                except Exception:  # a broken model must not stop questions reaching the list
                    log.exception("question embeddings failed; grouping by words alone")
                    self.broken = True
                    return None
                if len(self._cache) + len(missing) > self.CACHE:
                    self._cache.clear()
                fresh = dict(zip(missing, rows, strict=True))
                self._cache.update(fresh)
                found.update(fresh)
            return [found[t] for t in texts]


def question_vectors_of(retriever: object) -> QuestionVectors | None:
    """Embeddings for grouping when the retriever has an embedder (the semantic hybrid's),
    loaded on first use like the retriever's own; None for a lexical retriever."""
    if not hasattr(type(retriever), "embedder"):
        return None
    return QuestionVectors(lambda: getattr(retriever, "embedder"))  # noqa: B009
