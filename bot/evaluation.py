"""Measure what an employee gets from labeled questions: the outcome of each (answered,
uncertain, not covered), whether it helped or misled, how well confidence separates covered
from uncovered questions, and the ranking alone.

Definitions (issue 16), over one set's questions:

- useful: an answerable question answered or uncertain with a right clause in the top 3, or
  an unanswerable one uncertain or not covered, as a share of all questions;
- harmful: answered, and unanswerable or with no right clause in the top 3; reported over all
  questions and over the answered ones ("wrong when confident", what the target holds);
- not-covered precision, recall and F1 count uncertain and not covered alike as "not
  answered", since both put the question on the policy team's review list;
- confidence AUC: the chance that a covered question's confidence is above an uncovered one's
  (Mann-Whitney, ties count a half); none when the set has no uncovered question;
- recall@1, recall@3 and MRR are the ranking alone (threshold 0, whatever the outcome), with
  the mean length of the top-3 clauses, so recall is never bought with longer clauses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.answering.outcome import Outcome, outcome_of
from bot.config import Settings
from bot.models import PolicyError, Retrieval, StoredClause


@dataclass(frozen=True)
class LabeledQuestion:
    """A question with the places that answer it; none means the policy does not cover it.

    `sections` name section numbers ("4.2") or titles; `lines` are inclusive 1-based line
    ranges of the source file, for policies whose headings carry no numbers.
    """

    question: str
    sections: tuple[str, ...] = ()
    lines: tuple[tuple[int, int], ...] = ()

    @property
    def covered(self) -> bool:
        return bool(self.sections or self.lines)

    def matches(self, stored: StoredClause) -> bool:
        clause = stored.clause
        for ref in self.sections:
            ref_l = ref.lower().strip()
            if clause.section and (clause.section == ref or clause.section.startswith(ref + ".")):
                return True
            if clause.section_title.lower() == ref_l:
                return True
        return any(
            clause.line_start <= end and start <= (clause.line_end or clause.line_start)
            for start, end in self.lines
        )


def load_questions(path: Path) -> list[LabeledQuestion]:
    try:
        raw_lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise PolicyError(f"Cannot read {path}: {error.strerror}") from None
    out = []
    for number, line in enumerate(raw_lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(
                LabeledQuestion(
                    question=str(row["question"]),
                    sections=tuple(str(s) for s in row.get("sections", [])),
                    lines=tuple((int(a), int(b)) for a, b in row.get("lines", [])),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise PolicyError(f"{path}:{number}: not a labeled question ({error})") from None
    if not out:
        raise PolicyError(f"{path} holds no questions.")
    return out


@dataclass(frozen=True)
class Cuts:
    """The two confidence thresholds that make a retrieval an outcome (`outcome_of`)."""

    answer_from: float
    uncertain_from: float

    @classmethod
    def of(cls, settings: Settings) -> Cuts:
        return cls(settings.min_confidence, settings.uncertain_confidence)

    def outcome(self, retrieval: Retrieval) -> Outcome:
        return outcome_of(retrieval, self.answer_from, self.uncertain_from)


@dataclass(frozen=True)
class QuestionResult:
    """How one labeled question fared, so two retrievers can be compared question by question."""

    covered: bool  # the policy answers it
    rank: int | None  # where the first answering clause stands in the top 10, if it does
    confidence: float  # the retriever's confidence (a peer's: its top score)
    outcome: Outcome
    cited_chars: tuple[int, ...]  # lengths of the top-3 clauses it would cite

    @property
    def flagged(self) -> bool:
        """Not answered with confidence: uncertain or not covered, both reviewed."""
        return self.outcome is not Outcome.ANSWERED

    @property
    def right_in_top_3(self) -> bool:
        return self.rank is not None and self.rank <= 3

    @property
    def useful(self) -> bool:
        if self.covered:
            return self.outcome.cites and self.right_in_top_3
        return self.outcome is not Outcome.ANSWERED

    @property
    def harmful(self) -> bool:
        return self.outcome is Outcome.ANSWERED and not (self.covered and self.right_in_top_3)


def result_of(labeled: LabeledQuestion, retrieval: Retrieval, cuts: Cuts) -> QuestionResult:
    rank = next(
        (n for n, s in enumerate(retrieval.ranked[:10], 1) if labeled.matches(s.stored)), None
    )
    return QuestionResult(
        covered=labeled.covered,
        rank=rank if labeled.covered else None,
        confidence=retrieval.confidence,
        outcome=cuts.outcome(retrieval),
        cited_chars=tuple(len(s.stored.clause.text) for s in retrieval.ranked[:3]),
    )


@dataclass(frozen=True)
class EvalReport:
    name: str
    questions: int
    covered: int
    answered: int
    uncertain: int
    not_covered: int
    useful: float
    harmful: float  # share of all questions
    wrong_when_confident: float  # harmful share of the answered questions: the target's
    unanswered_precision: float  # "unanswered": uncertain or not covered
    unanswered_recall: float
    unanswered_f1: float
    confidence_auc: float | None  # None: the set has no uncovered question
    recall_at_1: float
    recall_at_3: float
    mrr: float
    mean_cited_chars: float  # mean length of the top-3 clauses: recall must not come from size

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def evaluate(
    name: str,
    questions: Iterable[LabeledQuestion],
    retrieve: Callable[[str], Retrieval],
    cuts: Cuts,
) -> EvalReport:
    return evaluate_parts(name, [(questions, retrieve)], cuts)


def evaluate_parts(
    name: str,
    parts: Iterable[tuple[Iterable[LabeledQuestion], Callable[[str], Retrieval]]],
    cuts: Cuts,
) -> EvalReport:
    """One report over several (questions, retrieve) parts, e.g. one part per policy."""
    return summarize(
        name,
        [
            result_of(labeled, retrieve(labeled.question), cuts)
            for questions, retrieve in parts
            for labeled in questions
        ],
    )


def confidence_auc(results: Sequence[QuestionResult]) -> float | None:
    """How well confidence tells covered questions from uncovered ones (None: not both kinds)."""
    return mann_whitney_auc(
        [r.confidence for r in results if r.covered],
        [r.confidence for r in results if not r.covered],
    )


def mann_whitney_auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """P(a positive score > a negative one), ties a half: U from ranks, so a sort, not a
    product of the two counts."""
    if not positive or not negative:
        return None
    ordered = sorted([(s, True) for s in positive] + [(s, False) for s in negative])
    rank_sum = 0.0  # of the positives, tied scores sharing their mean rank
    start = 0
    while start < len(ordered):
        end = start
        while end < len(ordered) and ordered[end][0] == ordered[start][0]:
            end += 1
        mean_rank = (start + 1 + end) / 2
        rank_sum += mean_rank * sum(1 for _, is_positive in ordered[start:end] if is_positive)
        start = end
    n = len(positive)
    return (rank_sum - n * (n + 1) / 2) / (n * len(negative))


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def precision_recall_f1(
    true_positive: int, false_positive: int, false_negative: int
) -> tuple[float, float, float]:
    """Each 0 where its denominator is; the not-covered figures of every report use it."""
    precision = _share(true_positive, true_positive + false_positive)
    recall = _share(true_positive, true_positive + false_negative)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def summarize(name: str, results: Sequence[QuestionResult]) -> EvalReport:
    covered = [r for r in results if r.covered]
    flagged_true = sum(1 for r in results if r.flagged and not r.covered)
    flagged_false = sum(1 for r in covered if r.flagged)
    missed = sum(1 for r in results if not r.flagged and not r.covered)
    precision, recall, f1 = precision_recall_f1(flagged_true, flagged_false, missed)
    cited = [chars for r in results for chars in r.cited_chars]
    answered = sum(1 for r in results if r.outcome is Outcome.ANSWERED)
    harmful = sum(1 for r in results if r.harmful)
    n = len(covered)
    return EvalReport(
        name=name,
        questions=len(results),
        covered=n,
        answered=answered,
        uncertain=sum(1 for r in results if r.outcome is Outcome.UNCERTAIN),
        not_covered=sum(1 for r in results if r.outcome is Outcome.NOT_COVERED),
        useful=_share(sum(1 for r in results if r.useful), len(results)),
        harmful=_share(harmful, len(results)),
        wrong_when_confident=_share(harmful, answered),
        unanswered_precision=precision,
        unanswered_recall=recall,
        unanswered_f1=f1,
        confidence_auc=confidence_auc(results),
        recall_at_1=_share(sum(1 for r in covered if r.rank == 1), n),
        recall_at_3=_share(sum(1 for r in covered if r.right_in_top_3), n),
        mrr=sum(1 / r.rank for r in covered if r.rank is not None) / n if n else 0.0,
        mean_cited_chars=sum(cited) / len(cited) if cited else 0.0,
    )
