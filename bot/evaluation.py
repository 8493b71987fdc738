"""Measure retrieval on labeled questions: recall@k, MRR and not-covered detection."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
class EvalReport:
    name: str
    questions: int
    covered: int
    recall_at_1: float
    recall_at_3: float
    mrr: float
    unanswered_precision: float
    unanswered_recall: float
    unanswered_f1: float
    mean_cited_chars: float  # mean length of the top-3 clauses: recall must not come from size

    def as_dict(self) -> dict[str, float | int | str]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def evaluate(
    name: str,
    questions: Iterable[LabeledQuestion],
    retrieve: Callable[[str], Retrieval],
    threshold: float,
) -> EvalReport:
    return evaluate_parts(name, [(questions, retrieve)], threshold)


def evaluate_parts(
    name: str,
    parts: Iterable[tuple[Iterable[LabeledQuestion], Callable[[str], Retrieval]]],
    threshold: float,
) -> EvalReport:
    """One report over several (questions, retrieve) parts, e.g. one part per policy."""
    return summarize(
        name,
        [
            outcome(labeled, retrieve(labeled.question), threshold)
            for questions, retrieve in parts
            for labeled in questions
        ],
    )


@dataclass(frozen=True)
class Outcome:
    """How one labeled question fared, so two retrievers can be compared question by question."""

    covered: bool  # the policy answers it
    rank: int | None  # where the first answering clause stands in the top 10, if it does
    flagged: bool  # the retriever said "not covered"
    cited_chars: tuple[int, ...]  # lengths of the top-3 clauses it would cite


def outcome(labeled: LabeledQuestion, retrieval: Retrieval, threshold: float) -> Outcome:
    rank = next(
        (n for n, s in enumerate(retrieval.ranked[:10], 1) if labeled.matches(s.stored)), None
    )
    return Outcome(
        covered=labeled.covered,
        rank=rank if labeled.covered else None,
        flagged=not retrieval.ranked or retrieval.confidence < threshold,
        cited_chars=tuple(len(s.stored.clause.text) for s in retrieval.ranked[:3]),
    )


def summarize(name: str, outcomes: Sequence[Outcome]) -> EvalReport:
    covered = [o for o in outcomes if o.covered]
    flagged_true = sum(1 for o in outcomes if o.flagged and not o.covered)
    flagged_false = sum(1 for o in covered if o.flagged)
    missed = sum(1 for o in outcomes if not o.flagged and not o.covered)
    precision = (
        flagged_true / (flagged_true + flagged_false) if flagged_true + flagged_false else 0.0
    )
    recall = flagged_true / (flagged_true + missed) if flagged_true + missed else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    cited = [chars for o in outcomes for chars in o.cited_chars]
    n = len(covered)
    return EvalReport(
        name=name,
        questions=len(outcomes),
        covered=n,
        recall_at_1=sum(1 for o in covered if o.rank == 1) / n if n else 0.0,
        recall_at_3=sum(1 for o in covered if o.rank is not None and o.rank <= 3) / n if n else 0.0,
        mrr=sum(1 / o.rank for o in covered if o.rank is not None) / n if n else 0.0,
        unanswered_precision=precision,
        unanswered_recall=recall,
        unanswered_f1=f1,
        mean_cited_chars=sum(cited) / len(cited) if cited else 0.0,
    )
