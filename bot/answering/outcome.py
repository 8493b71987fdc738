"""The three ways a question can end: answered, uncertain, or not covered.

An employee must be able to tell a confident answer from a best guess. Retrieval's confidence
is cut twice: at or above `answer_from` the clauses are the answer; from `uncertain_from` up to
it the closest clauses are shown, said plainly to be possibly not what was asked, and the
question goes to the policy team as if not covered; below it (or with nothing found) the policy
does not cover the question.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bot.models carries an Outcome on every Answer: no import back at run time
    from bot.models import Retrieval


class Outcome(StrEnum):
    ANSWERED = "answered"
    UNCERTAIN = "uncertain"
    NOT_COVERED = "not_covered"

    @property
    def reviewed(self) -> bool:
        """Whether the question goes on the policy team's review list."""
        return self is not Outcome.ANSWERED

    @property
    def cites(self) -> bool:
        """Whether the reply shows clauses (as the answer, or as the closest ones)."""
        return self is not Outcome.NOT_COVERED


def outcome_of(retrieval: Retrieval, answer_from: float, uncertain_from: float) -> Outcome:
    """Where retrieval's confidence falls between the two thresholds."""
    if not retrieval.ranked:
        return Outcome.NOT_COVERED
    if retrieval.confidence >= answer_from:
        return Outcome.ANSWERED
    if retrieval.confidence >= min(uncertain_from, answer_from):
        return Outcome.UNCERTAIN
    return Outcome.NOT_COVERED
