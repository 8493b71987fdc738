"""The three outcomes as cut from retrieval's confidence."""

from __future__ import annotations

from bot.answering.outcome import Outcome, outcome_of
from bot.models import Clause, Retrieval, ScoredClause, StoredClause


def _retrieval(confidence: float, found: bool = True) -> Retrieval:
    clause = Clause(text="Do not post client names.", section="1", section_title="Clients")
    ranked = (ScoredClause(StoredClause(1, 1, "demo", clause), 1.0),) if found else ()
    return Retrieval("may I post a client name?", ranked, confidence, (1,))


def test_confidence_is_cut_into_three_outcomes() -> None:
    assert outcome_of(_retrieval(0.9), 0.4, 0.25) is Outcome.ANSWERED
    assert outcome_of(_retrieval(0.4), 0.4, 0.25) is Outcome.ANSWERED
    assert outcome_of(_retrieval(0.3), 0.4, 0.25) is Outcome.UNCERTAIN
    assert outcome_of(_retrieval(0.25), 0.4, 0.25) is Outcome.UNCERTAIN
    assert outcome_of(_retrieval(0.1), 0.4, 0.25) is Outcome.NOT_COVERED


def test_nothing_found_is_not_covered_whatever_the_confidence() -> None:
    assert outcome_of(_retrieval(0.9, found=False), 0.4, 0.25) is Outcome.NOT_COVERED


def test_an_uncertain_floor_above_the_answer_threshold_leaves_no_band() -> None:
    assert outcome_of(_retrieval(0.3), 0.3, 0.5) is Outcome.ANSWERED
    assert outcome_of(_retrieval(0.2), 0.3, 0.5) is Outcome.NOT_COVERED


def test_only_answered_questions_stay_off_the_review_list() -> None:
    assert [o.reviewed for o in Outcome] == [False, True, True]
    assert [o.cites for o in Outcome] == [True, True, False]
