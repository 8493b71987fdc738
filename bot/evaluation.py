"""Measure retrieval on labeled questions: recall@k, MRR and not-covered detection."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
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
    hits1 = hits3 = 0
    reciprocal = 0.0
    covered = total = 0
    flagged_true = flagged_false = missed = 0
    cited_chars: list[int] = []
    for questions, retrieve in parts:
        for labeled in questions:
            total += 1
            retrieval = retrieve(labeled.question)
            predicted_uncovered = not retrieval.ranked or retrieval.confidence < threshold
            if labeled.covered:
                covered += 1
                if predicted_uncovered:
                    flagged_false += 1
                for rank, scored in enumerate(retrieval.ranked[:10], 1):
                    if labeled.matches(scored.stored):
                        hits1 += rank == 1
                        hits3 += rank <= 3
                        reciprocal += 1 / rank
                        break
            elif predicted_uncovered:
                flagged_true += 1
            else:
                missed += 1
            cited_chars.extend(len(s.stored.clause.text) for s in retrieval.ranked[:3])
    precision = (
        flagged_true / (flagged_true + flagged_false) if flagged_true + flagged_false else 0.0
    )
    recall = flagged_true / (flagged_true + missed) if flagged_true + missed else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return EvalReport(
        name=name,
        questions=total,
        covered=covered,
        recall_at_1=hits1 / covered if covered else 0.0,
        recall_at_3=hits3 / covered if covered else 0.0,
        mrr=reciprocal / covered if covered else 0.0,
        unanswered_precision=precision,
        unanswered_recall=recall,
        unanswered_f1=f1,
        mean_cited_chars=sum(cited_chars) / len(cited_chars) if cited_chars else 0.0,
    )
