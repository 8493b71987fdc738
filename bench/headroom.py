"""How far any decision to answer could go with a given ranking, so a target that no
confidence can reach shows up as the ranking's limit, not as a threshold still to tune.

For one retriever on one set, from its per-question results:

- the most useful it could be: every answerable question with a right clause in its top 3
  answered or uncertain, every unanswerable one flagged; no confidence can do better, since a
  question whose top 3 holds no right clause is never useful;
- the recall@3 that useful at least 80% would need, the rest being unchanged;
- not-covered F1 with a perfect judge that answers exactly the questions whose top 3 is right
  (so harmful is 0): the best F1 that keeps every answer right;
- the best not-covered F1 its own confidence reaches at any one answering cut with harmful at
  most 10% of the answered, the cut chosen on the set itself (so in-sample, an upper bound on
  what a fitted cut gives);
- how well its confidence tells the questions worth answering (answerable, right clause in
  the top 3) from the rest (Mann-Whitney AUC), which is what harmful and not-covered F1 need
  together; the covered-versus-not AUC of the main table does not see a wrong top 3.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.evaluation import QuestionResult, mann_whitney_auc, precision_recall_f1

USEFUL_TARGET = 0.80
HARMFUL_TARGET = 0.10  # of the answered


@dataclass(frozen=True)
class Headroom:
    questions: int
    answerable: int
    unanswerable: int
    right_in_top_3: int  # answerable questions whose top 3 holds a right clause
    best_nc_f1_within_harm: float | None  # own confidence, in-sample cut; None: no unanswerable
    worth_answering_auc: float | None  # None: the set lacks one of the two kinds

    @property
    def recall_at_3(self) -> float:
        return self.right_in_top_3 / self.answerable if self.answerable else 0.0

    @property
    def most_useful(self) -> float:
        return (self.right_in_top_3 + self.unanswerable) / self.questions

    @property
    def recall_needed_for_useful(self) -> float:
        """Recall@3 for useful at the target (never above 1: unanswerable ones count too)."""
        if not self.answerable:
            return 0.0
        return max(0.0, (USEFUL_TARGET * self.questions - self.unanswerable) / self.answerable)

    @property
    def perfect_judge_nc_f1(self) -> float | None:
        if not self.unanswerable:
            return None
        wrong_top_3 = self.answerable - self.right_in_top_3
        return 2 * self.unanswerable / (2 * self.unanswerable + wrong_top_3)


def best_nc_f1_within_harm(results: Sequence[QuestionResult]) -> float | None:
    """Answering every question at or above one confidence, the best not-covered F1 among the
    cuts whose harmful share of the answered stays within the target (answering nothing
    counts, with nothing harmful)."""
    unanswerable = sum(1 for r in results if not r.covered)
    answerable = len(results) - unanswerable
    if not unanswerable:
        return None
    _, _, best = precision_recall_f1(unanswerable, answerable, 0)  # nothing answered
    answered = harmful = answered_unanswerable = 0
    ordered = sorted(results, key=lambda r: r.confidence, reverse=True)
    # Questions of equal confidence fall on the same side of any cut, so they move together.
    for _, tied in itertools.groupby(ordered, key=lambda r: r.confidence):
        for r in tied:
            answered += 1
            if not r.covered:
                answered_unanswerable += 1
            if not (r.covered and r.right_in_top_3):
                harmful += 1
        if harmful <= HARMFUL_TARGET * answered:
            _, _, f1 = precision_recall_f1(
                unanswerable - answered_unanswerable,
                answerable - (answered - answered_unanswerable),
                answered_unanswerable,
            )
            best = max(best, f1)
    return best


def headroom(results: Sequence[QuestionResult]) -> Headroom:
    worth = [r.confidence for r in results if r.covered and r.right_in_top_3]
    rest = [r.confidence for r in results if not (r.covered and r.right_in_top_3)]
    answerable = sum(1 for r in results if r.covered)
    return Headroom(
        questions=len(results),
        answerable=answerable,
        unanswerable=len(results) - answerable,
        right_in_top_3=len(worth),
        best_nc_f1_within_harm=best_nc_f1_within_harm(results),
        worth_answering_auc=mann_whitney_auc(worth, rest),
    )


def _number(value: float | None, as_share: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if as_share else f"{value:.3f}"


def markdown(
    results: Mapping[str, Mapping[str, Sequence[QuestionResult]]], set_names: Sequence[str]
) -> str:
    """One row per held-out set and retriever: `results` is retriever -> set -> questions."""
    lines = [
        "### What the ranking leaves room for",
        "",
        "Held-out sets only; computed from the same per-question results as the tables above "
        "(`bench/headroom.py`). *Most useful*: every answerable question whose top 3 holds a "
        "right clause answered or uncertain and every unanswerable one flagged, the best any "
        "decision to answer could do with this ranking. *Recall@3 for 80% useful*: what the "
        "ranking would need, the rest unchanged. "
        "*NC F1, perfect judge*: answering exactly the questions whose top 3 is right "
        "(harmful 0). *Best NC F1, harmful ≤ 10%*: the retriever's own confidence at the best "
        "single answering cut chosen on the set itself, an upper bound on a fitted cut. "
        "*Worth-answering AUC*: how well that confidence tells questions whose top 3 is right "
        "from the rest.",
        "",
        "| set | retriever | recall@3 | most useful | recall@3 for 80% useful "
        "| NC F1, perfect judge | best NC F1, harmful ≤ 10% | worth-answering AUC |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for set_name in set_names:
        for retriever, by_set in results.items():
            if set_name not in by_set:
                continue
            h = headroom(by_set[set_name])
            lines.append(
                f"| {set_name} | {retriever} | {h.recall_at_3:.3f} "
                f"| {_number(h.most_useful, as_share=True)} "
                f"| {_number(h.recall_needed_for_useful)} | {_number(h.perfect_judge_nc_f1)} "
                f"| {_number(h.best_nc_f1_within_harm)} | {_number(h.worth_answering_auc)} |"
            )
    return "\n".join(lines)
