"""How alike two questions are: their term profiles (stems, vocabulary, everyday synonyms,
weighted by rarity in the policy) and the similarity that decides whether one joins a group."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.retrieval.lexical import stem, term_groups
from bot.retrieval.vocabulary import GENERIC_QUESTION_WORDS, TOPIC_SYNONYMS

#: A question joins a group at this similarity or above (0..1); tuned on paraphrase sets in
#: tests/test_review.py, including near misses that share a word but not a topic.
JOIN_THRESHOLD = 0.45
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


@lru_cache(maxsize=1)
def _synonyms() -> dict[str, frozenset[str]]:
    """Stem -> the stems of its everyday synonyms."""
    out: dict[str, set[str]] = {}
    for synonyms in TOPIC_SYNONYMS:
        stems = {stem(word) for word in synonyms}
        for s in stems:
            out.setdefault(s, set()).update(stems - {s})
    return {s: frozenset(others) for s, others in out.items()}


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
    def of(cls, text: str) -> TermProfile:
        terms: dict[str, tuple[int, dict[str, float]]] = {}
        for group in term_groups(text):
            key = stem(group.word)
            members = dict(group.members)
            for synonym in sorted(_synonyms().get(key, ())):
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
