"""`bench.headroom` says what no decision to answer can beat with a given ranking; its figures
are what the bench quotes when a target is out of reach, so they are checked by hand here."""

from __future__ import annotations

import pytest

from bench.headroom import best_nc_f1_within_harm, headroom, markdown
from bot.answering.outcome import Outcome
from bot.evaluation import QuestionResult


def _result(covered: bool, rank: int | None, confidence: float) -> QuestionResult:
    return QuestionResult(covered, rank, confidence, Outcome.UNCERTAIN, (100, 100, 100))


# Two answerable questions with a right clause in the top 3, one whose right clause is 5th,
# one with none in the top 10, two the policy does not answer.
SET = [
    _result(True, 1, 0.9),
    _result(True, 5, 0.85),
    _result(True, 2, 0.8),
    _result(True, None, 0.3),
    _result(False, None, 0.2),
    _result(False, None, 0.1),
]


def test_the_ceilings_follow_from_the_ranking_alone() -> None:
    h = headroom(SET)
    assert (h.answerable, h.unanswerable, h.right_in_top_3) == (4, 2, 2)
    assert h.most_useful == pytest.approx(4 / 6)
    assert h.recall_needed_for_useful == pytest.approx((0.8 * 6 - 2) / 4)
    # Answering exactly the two right ones flags 2 unanswerable and 2 answerable.
    assert h.perfect_judge_nc_f1 == pytest.approx(2 * 2 / (2 * 2 + 2))
    # The worth answering (0.9, 0.8) against the rest (0.85, 0.3, 0.2, 0.1): 7 of 8 pairs.
    assert h.worth_answering_auc == pytest.approx(7 / 8)


def test_the_best_cut_may_not_answer_wrongly_more_than_a_tenth_of_the_time() -> None:
    # Answering the 0.9 alone is safe (P 2/5, R 1); any lower cut answers the 5th-ranked one
    # and is a third or a half wrong.
    assert best_nc_f1_within_harm(SET) == pytest.approx(2 * 0.4 / 1.4)


def test_questions_of_equal_confidence_are_answered_together() -> None:
    tied = [_result(True, 1, 0.9), _result(True, None, 0.9), _result(False, None, 0.1)]
    # Only "answer nothing" is within the target: P 1/3, R 1.
    assert best_nc_f1_within_harm(tied) == pytest.approx(0.5)


def test_a_set_every_question_of_which_is_answerable_has_no_not_covered_figures() -> None:
    h = headroom([_result(True, 1, 0.5), _result(True, None, 0.4)])
    assert h.perfect_judge_nc_f1 is None and h.best_nc_f1_within_harm is None
    assert h.recall_needed_for_useful == pytest.approx(0.8)
    row = markdown({"ours": {"only": SET}}, ["only", "missing"]).splitlines()[-1]
    assert row.startswith("| only | ours | 0.500 | 66.7% | 0.700 | 0.667 | 0.571 | 0.875 |")
