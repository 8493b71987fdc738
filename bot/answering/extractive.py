"""Turn retrieved clauses into an answer. Extractive: only the policy's own words are quoted."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from bot import messages
from bot.answering.llm import LLMUsage
from bot.answering.outcome import Outcome
from bot.models import Citation, Retrieval, ScoredClause

#: A further clause is cited only if it ranks at least this close to the best one.
RELATIVE_CUTOFF = 0.55

#: The not-covered reply before the core names the active policy's teams in it.
NOT_COVERED = messages.not_covered([])


@dataclass(frozen=True)
class Draft:
    """An answer before it is logged: what to say and which clauses it rests on."""

    outcome: Outcome
    lead: str
    citations: tuple[Citation, ...]
    source: str = "extractive"
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: A grounded answer's verdict (allowed, not_allowed, depends, not_covered); "" if extractive.
    verdict: str = ""
    #: What the LLM call behind this draft cost, when there was one (it may have failed).
    llm: LLMUsage | None = None

    @property
    def answered(self) -> bool:
        return self.outcome is Outcome.ANSWERED


class Answerer(Protocol):
    async def answer(self, retrieval: Retrieval, *, outcome: Outcome) -> Draft: ...


def _named(title: str) -> str:
    """A heading as a sentence names it: "Before you post:" loses its colon."""
    return title.strip().rstrip(":").rstrip()


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


def cited_where(citations: tuple[Citation, ...]) -> tuple[str, str]:
    """How a lead names the clauses: the first one's section ("section 4.2 Confidential
    information", or a titled part without a number in quotes), and the others', "" if none."""
    first = citations[0]
    named = _named(first.reference)
    where = f"section {named}" if first.section else f"“{named}”"
    others = ", ".join(
        dict.fromkeys(
            c.section or _named(c.title) for c in citations[1:] if c.reference != first.reference
        )
    )
    return where, others


class ExtractiveAnswerer:
    """Quotes the clauses; says plainly when they may not answer the question, and when the
    policy does not cover it."""

    def __init__(self, max_citations: int = 3) -> None:
        self.max_citations = max_citations

    async def answer(self, retrieval: Retrieval, *, outcome: Outcome) -> Draft:
        return self.compose(retrieval, outcome=outcome)

    def compose(self, retrieval: Retrieval, *, outcome: Outcome) -> Draft:
        citations = select_citations(retrieval, self.max_citations) if outcome.cites else ()
        if not citations:
            return Draft(outcome=Outcome.NOT_COVERED, lead=NOT_COVERED, citations=())
        where, others = cited_where(citations)
        if outcome is Outcome.UNCERTAIN:
            # The core names the active policy's teams in it, as in the not-covered reply.
            lead = messages.uncertain(where, others, [])
        else:
            lead = messages.answered(where, others)
        return Draft(outcome=outcome, lead=lead, citations=citations)


def for_teams(draft: Draft, teams: list[str]) -> Draft:
    """The draft with the active policy's teams named where it says who has the question: a
    not-covered reply's, or an uncertain one's (an LLM's summary of the closest clauses kept
    after it). A confident or reviewed answer is as it was."""
    if draft.outcome is Outcome.NOT_COVERED:
        return replace(draft, lead=messages.not_covered(teams))
    if draft.outcome is Outcome.UNCERTAIN and draft.citations:
        lead = messages.uncertain(*cited_where(draft.citations), teams)
        if draft.source == "llm":
            lead = f"{lead} {draft.lead}"
        return replace(draft, lead=lead)
    return draft
