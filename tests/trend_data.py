"""Questions with known counts per ISO week, for the trends' tests (data, page, digest)."""

from __future__ import annotations

import pytest

from bot.core import PolicyBot
from bot.models import IncomingQuestion, QuestionError

#: The range `known_weeks` fills, and what each of its weeks holds:
#: (from the policy, reviewed answer, uncertain, not covered).
SINCE, UNTIL = "2026-03-02", "2026-03-29"
WEEKS = {
    "2026-W10": (2, 0, 0, 1),
    "2026-W11": (1, 0, 1, 1),
    "2026-W12": (0, 1, 0, 0),
    "2026-W13": (0, 0, 0, 0),
}


async def asked_on(bot: PolicyBot, text: str, when: str) -> int:
    """A question asked through the core, then dated `when` (UTC, ISO)."""
    answer = await bot.ask(IncomingQuestion(text, platform="slack", asker="U1"))
    assert answer.question_id is not None
    bot.storage.update_question(answer.question_id, asked_at=when)
    return answer.question_id


async def known_weeks(bot: PolicyBot) -> dict[str, int]:
    """Three ISO weeks of questions (2026-W10 to W12) and one before them; returns some ids."""
    await asked_on(
        bot, "may I share our unreleased roadmap on LinkedIn?", "2026-03-01T23:59:59+00:00"
    )
    # W10: two from the policy (both citing 3.3), one not covered, one refused.
    roadmap = await asked_on(
        bot, "may I share our unreleased roadmap on LinkedIn?", "2026-03-02T00:00:00+00:00"
    )
    await asked_on(
        bot, "can I post our internal product roadmap on twitter", "2026-03-04T10:00:00+00:00"
    )
    await asked_on(bot, "what time does the cafeteria close", "2026-03-05T09:00:00+00:00")
    with pytest.raises(QuestionError):
        await bot.ask(IncomingQuestion("x" * 5000, platform="slack", asker="U1"))
    refused = bot.storage.questions(status="refused")[0].id
    bot.storage.update_question(refused, asked_at="2026-03-06T12:00:00+00:00")
    # W11: one from the policy, the cafeteria again (not covered), one uncertain.
    offsite = await asked_on(
        bot, "can I post pictures from the team offsite on instagram?", "2026-03-10T08:00:00+00:00"
    )
    await asked_on(bot, "what time does the cafeteria close today", "2026-03-11T08:00:00+00:00")
    unsure = await asked_on(bot, "can I expense LinkedIn Premium?", "2026-03-13T08:00:00+00:00")
    bot.storage.update_question(unsure, outcome="uncertain", review_reason="uncertain")
    # W12: the cafeteria group answered by the policy team; the next asker gets that answer.
    (cafeteria,) = [g for g in bot.review.groups("open") if "cafeteria" in g.sample]
    await bot.answer_group(cafeteria.id, "The cafeteria closes at 15:00.")
    reviewed = await asked_on(
        bot, "what time does the cafeteria close on fridays?", "2026-03-17T08:00:00+00:00"
    )
    assert bot.storage.question(reviewed).answer_source == "reviewed"
    bot.feedback(roadmap, helpful=True)
    bot.feedback(offsite, helpful=False)
    bot.feedback(reviewed, helpful=True)
    return {"cafeteria": cafeteria.id}
