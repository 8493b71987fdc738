"""Turn retrieved clauses into an answer. Extractive: only the policy's own words are quoted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.answering.llm import LLMUsage
from bot.models import Citation, Retrieval, ScoredClause

#: A further clause is cited only if it ranks at least this close to the best one.
RELATIVE_CUTOFF = 0.55

NOT_COVERED = (
    "The policy does not cover this, so I can't answer it from the policy. "
    "I've logged your question for the policy team (HR, IT, Marketing, PR and Legal), "
    "who review what the policy leaves open."
)


@dataclass(frozen=True)
class Draft:
    """An answer before it is logged: what to say and which clauses it rests on."""

    answered: bool
    lead: str
    citations: tuple[Citation, ...]
    source: str = "extractive"
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: A grounded answer's verdict (allowed, not_allowed, depends, not_covered); "" if extractive.
    verdict: str = ""
    #: What the LLM call behind this draft cost, when there was one (it may have failed).
    llm: LLMUsage | None = None


class Answerer(Protocol):
    async def answer(self, retrieval: Retrieval, *, covered: bool) -> Draft: ...


def _named(title: str) -> str:
    """A heading as a sentence names it: "Before you post:" loses its colon."""
    return title.strip().rstrip(":").rstrip()


def covered(retrieval: Retrieval, min_confidence: float) -> bool:
    """Whether the policy covers what was asked: a clause found, and confidence enough."""
    return bool(retrieval.ranked) and retrieval.confidence >= min_confidence


def citation(scored: ScoredClause) -> Citation:
    stored = scored.stored
    return Citation(
        clause_id=stored.id,
        document=stored.document,
        section=stored.clause.section,
        title=stored.clause.section_title,
        text=stored.clause.text,
        score=scored.score,
        owner=stored.clause.owner,
        document_title=stored.document_title,
    )


def select_citations(retrieval: Retrieval, limit: int) -> tuple[Citation, ...]:
    """The best clause, and the next ones that rank close to it."""
    if not retrieval.ranked:
        return ()
    best = retrieval.ranked[0].score
    chosen = [s for s in retrieval.ranked if s.score >= best * RELATIVE_CUTOFF][:limit]
    return tuple(citation(s) for s in chosen)


class ExtractiveAnswerer:
    """Quotes the clauses; says plainly when the policy does not cover the question."""

    def __init__(self, max_citations: int = 3) -> None:
        self.max_citations = max_citations

    async def answer(self, retrieval: Retrieval, *, covered: bool) -> Draft:
        return self.compose(retrieval, covered=covered)

    def compose(self, retrieval: Retrieval, *, covered: bool) -> Draft:
        if not covered:
            return Draft(answered=False, lead=NOT_COVERED, citations=())
        citations = select_citations(retrieval, self.max_citations)
        first = citations[0]
        named = _named(first.reference)
        where = f"section {named}" if first.section else f"“{named}”"
        lead = f"The policy addresses this in {where}. Here is what it says:"
        others = ", ".join(
            dict.fromkeys(
                c.section or _named(c.title)
                for c in citations[1:]
                if c.reference != first.reference
            )
        )
        if others:
            lead = (
                f"The policy addresses this in {where} (see also {others}). Here is what it says:"
            )
        return Draft(answered=True, lead=lead, citations=citations)
