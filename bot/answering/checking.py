"""Check a piece of text (a draft post, someone's message) against the policy.

A question names its topic; a post does not, and most of its words (names, places, "proud")
are words the policy never uses. So the text is read in small passages: each sentence, and
windows of three consecutive words the policy does use. A passage whose best clause it covers
well enough counts as touching that clause. Clauses found by several passages are reported
once, strongest first, with the passages that raised them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import messages
from bot.answering.extractive import citation
from bot.answering.outcome import Outcome, outcome_of
from bot.models import Citation, QuestionError
from bot.reading.clauses import split_sentences
from bot.retrieval.active import ActivePolicy
from bot.retrieval.lexical import term_groups
from bot.retrieval.vocabulary import content_words

#: A draft post may be longer than a question; longer texts are refused with a message.
MAX_CHECK_CHARS = 8000
#: Words per window of policy vocabulary.
WINDOW = 3
#: A window or sentence must cover its best clause at least this well (and never less than the
#: question threshold): a post's passages are short, so a weak match is mostly chance.
PASSAGE_CONFIDENCE = 0.6
#: Passages with fewer content words than this say too little to point at a clause.
MIN_PASSAGE_WORDS = 2

NOTHING_APPLIES = (
    "Nothing in the policy appears to apply to this text. That is not an approval: "
    "if you are unsure, ask the policy team."
)


@dataclass(frozen=True)
class Finding:
    """A clause that applies to the text, and the passages of the text that raised it."""

    citation: Citation
    passages: tuple[str, ...]


@dataclass(frozen=True)
class PostCheck:
    text: str
    findings: tuple[Finding, ...]
    policy_version: str = ""

    @property
    def applies(self) -> bool:
        return bool(self.findings)

    @property
    def lead(self) -> str:
        if not self.findings:
            return NOTHING_APPLIES
        sections = ", ".join(dict.fromkeys(f.citation.reference for f in self.findings))
        return f"These parts of the policy apply to this text: {sections}."


def normalize_text(text: str, max_chars: int = MAX_CHECK_CHARS) -> str:
    cleaned = " ".join((text or "").split())
    if not cleaned:
        raise QuestionError(messages.EMPTY_DRAFT)
    if len(cleaned) > max_chars:
        raise QuestionError(messages.draft_too_long(len(cleaned), max_chars))
    return cleaned


def passages(text: str, active: ActivePolicy) -> list[str]:
    """Each sentence, then windows of the words the policy itself uses (the word or one of its
    expansions, as retrieval matches them), in order."""
    sentences = [s for s in split_sentences(text) if len(content_words(s)) >= MIN_PASSAGE_WORDS]
    groups = term_groups(text)
    counts = active.document_frequency({m for g in groups for m in g.members})
    vocabulary = [g.word for g in groups if any(counts.get(m) for m in g.members)]
    windows = [
        " ".join(vocabulary[i : i + WINDOW])
        for i in range(max(len(vocabulary) - WINDOW + 1, 1))
        if len(vocabulary[i : i + WINDOW]) >= MIN_PASSAGE_WORDS
    ]
    return list(dict.fromkeys([*sentences, *windows]))


def check_text(
    text: str,
    active: ActivePolicy,
    *,
    min_confidence: float,
    limit: int,
) -> tuple[str, tuple[Finding, ...]]:
    """The clauses that apply to `text` (at most `limit`), strongest first."""
    cleaned = normalize_text(text)
    threshold = max(min_confidence, PASSAGE_CONFIDENCE)
    best: dict[int, tuple[float, Citation, list[str]]] = {}
    for passage in passages(cleaned, active):
        retrieval = active.retrieve(passage)
        # Only a confident match counts: a passage's uncertain match is mostly chance, and a
        # check has no policy team to pass a doubt to (nothing of a draft is logged).
        if outcome_of(retrieval, threshold, threshold) is not Outcome.ANSWERED:
            continue
        top = retrieval.ranked[0]
        score = retrieval.confidence + top.score
        found = best.get(top.stored.id)
        if found is None:
            best[top.stored.id] = (score, citation(top), [passage])
        else:
            found[2].append(passage)
            if score > found[0]:
                best[top.stored.id] = (score, found[1], found[2])
    ranked = sorted(best.values(), key=lambda item: -item[0])[:limit]
    return cleaned, tuple(Finding(c, tuple(p)) for _, c, p in ranked)
