"""Measure the configured LLM on labeled questions, as an asker would get its answers.

Each question goes through the grounded path as `ask` takes it (cleaned, retrieved, the floor,
the LLM's call within its timeout and budget, the reply's checks, the fallback), but nothing is
logged: an evaluation must not fill the policy team's review list. What is scored is the
outcome (answered, uncertain, not covered), whether an answered question cites a clause its
label names, how well "the policy team will answer this" separates the questions the policy
does not cover, and how often the LLM's reply could not be used.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from bot.answering.grounded import Judged
from bot.answering.outcome import Outcome
from bot.evaluation import LabeledQuestion, precision_recall_f1
from bot.models import Retrieval
from bot.text import clean_text

#: One question's progress through a file: (questions done, questions in the file).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LLMResult:
    """How one labeled question fared through the LLM."""

    question: str
    covered: bool  # its label names a place in the policy that answers it
    outcome: Outcome
    verdict: str  # the LLM's verdict when its reply was used; "" otherwise
    cited: tuple[str, ...]  # the cited clauses' references ("3.3 Unreleased services...")
    citation_hit: bool  # answered, and at least one cited clause is one its label names
    asked: bool  # the LLM was called (no call below the floor)
    fallback: str  # why the LLM's reply was not used; "" when it was, or was not asked
    latency_ms: int | None
    prompt_tokens: int | None
    completion_tokens: int | None

    @property
    def flagged(self) -> bool:
        """Sent to the policy team instead of answered: uncertain or not covered."""
        return self.outcome.reviewed

    @property
    def harmful(self) -> bool:
        """Answered with confidence, and wrongly: the policy does not cover the question, or
        none of the cited clauses is one that answers it."""
        return self.outcome is Outcome.ANSWERED and not (self.covered and self.citation_hit)

    def as_dict(self) -> dict[str, object]:
        row = asdict(self)
        row["outcome"] = self.outcome.value
        row["cited"] = list(self.cited)
        return row


def result_of(labeled: LabeledQuestion, retrieval: Retrieval, judged: Judged) -> LLMResult:
    stored = {scored.stored.id: scored.stored for scored in retrieval.ranked}
    cited = [stored[c.clause_id] for c in judged.draft.citations if c.clause_id in stored]
    answered = judged.outcome is Outcome.ANSWERED
    usage = judged.draft.llm
    return LLMResult(
        question=labeled.question,
        covered=labeled.covered,
        outcome=judged.outcome,
        verdict=judged.draft.verdict,
        cited=tuple(c.clause.reference for c in cited),
        citation_hit=answered and any(labeled.matches(c) for c in cited),
        asked=judged.asked,
        fallback=judged.fallback,
        latency_ms=usage.latency_ms if usage else None,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
    )


@dataclass(frozen=True)
class LLMEvalReport:
    name: str
    questions: int
    covered: int
    answered: int
    uncertain: int
    not_covered: int
    #: Answered questions the policy covers whose citations include a clause the label names,
    #: over the answered questions the policy covers.
    citation_hits: int
    citation_hit_rate: float
    #: Answered, and unanswerable or citing no right clause, over all questions.
    harmful: int
    harmful_rate: float
    #: "Not covered" detection, a question counting as flagged when it is not answered
    #: (uncertain or not covered: either way it goes to the policy team).
    not_covered_precision: float
    not_covered_recall: float
    not_covered_f1: float
    llm_calls: int
    #: Calls whose reply was not used (timeout, HTTP error, bad reply, unsupported summary):
    #: retrieval's confidence decided instead.
    fallbacks: int
    latency_p50_ms: float
    prompt_tokens: int
    completion_tokens: int
    results: tuple[LLMResult, ...]

    def as_dict(self, *, with_results: bool = True) -> dict[str, object]:
        out: dict[str, object] = {
            key: (round(value, 4) if isinstance(value, float) else value)
            for key, value in self.__dict__.items()
            if key != "results"
        }
        if with_results:
            out["results"] = [r.as_dict() for r in self.results]
        return out


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def summarize_llm(name: str, results: Sequence[LLMResult]) -> LLMEvalReport:
    covered = [r for r in results if r.covered]
    answered_covered = [r for r in covered if r.outcome is Outcome.ANSWERED]
    hits = sum(r.citation_hit for r in answered_covered)
    flagged_right = sum(r.flagged and not r.covered for r in results)
    flagged_wrong = sum(r.flagged for r in covered)
    missed = sum(not r.flagged and not r.covered for r in results)
    precision, recall, f1 = precision_recall_f1(flagged_right, flagged_wrong, missed)
    harmful = sum(r.harmful for r in results)
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    return LLMEvalReport(
        name=name,
        questions=len(results),
        covered=len(covered),
        answered=sum(r.outcome is Outcome.ANSWERED for r in results),
        uncertain=sum(r.outcome is Outcome.UNCERTAIN for r in results),
        not_covered=sum(r.outcome is Outcome.NOT_COVERED for r in results),
        citation_hits=hits,
        citation_hit_rate=_ratio(hits, len(answered_covered)),
        harmful=harmful,
        harmful_rate=_ratio(harmful, len(results)),
        not_covered_precision=precision,
        not_covered_recall=recall,
        not_covered_f1=f1,
        llm_calls=sum(r.asked for r in results),
        fallbacks=sum(bool(r.fallback) for r in results),
        latency_p50_ms=float(statistics.median(latencies)) if latencies else 0.0,
        prompt_tokens=sum(r.prompt_tokens or 0 for r in results),
        completion_tokens=sum(r.completion_tokens or 0 for r in results),
        results=tuple(results),
    )


async def evaluate_llm(
    name: str,
    questions: Iterable[LabeledQuestion],
    retrieve: Callable[[str], Retrieval],
    judge: Callable[[Retrieval], Awaitable[Judged]],
    progress: Progress | None = None,
) -> LLMEvalReport:
    """Each question retrieved and judged in turn (one call at a time: the organization's LLM
    is not load-tested by an evaluation), then summarized."""
    labeled = list(questions)
    results = []
    for done, question in enumerate(labeled, 1):
        retrieval = retrieve(clean_text(question.question))
        results.append(result_of(question, retrieval, await judge(retrieval)))
        if progress is not None:
            progress(done, len(labeled))
    return summarize_llm(name, results)
