from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core import PolicyBot
from bot.models import IncomingQuestion, QuestionError
from bot.review.digest import build_digest, post_digest
from tests.fakes.outbound import RecordingChannelPoster


async def asked(bot: PolicyBot, text: str) -> int:
    answer = await bot.ask(IncomingQuestion(text, platform="slack", asker="U1"))
    assert answer.question_id is not None
    return answer.question_id


async def test_weekly_digest_counts_groups_owners_and_cited_sections(bot: PolicyBot) -> None:
    # Last month: outside the week, so not counted.
    old = await asked(bot, "may I share our unreleased roadmap on LinkedIn?")
    bot.storage.update_question(
        old, asked_at=(datetime.now(UTC) - timedelta(days=30)).isoformat(timespec="seconds")
    )
    # This week: three answered from the policy (3.3 twice), four not covered in two topics,
    # one reviewed answer, one refused.
    await asked(bot, "may I share our unreleased roadmap on LinkedIn?")
    await asked(bot, "can I post our internal product roadmap on twitter")
    await asked(bot, "can I post pictures from the team offsite on instagram?")
    for text in [
        "can I expense LinkedIn Premium?",
        "will the company reimburse my LinkedIn Premium subscription",
        "is LinkedIn premium something I can claim back on expenses",
        "what time does the cafeteria close",
    ]:
        await asked(bot, text)
    cafeteria = next(g for g in bot.review.groups("open") if "cafeteria" in g.sample)
    await bot.answer_group(cafeteria.id, "The cafeteria closes at 15:00.")
    reviewed = await bot.ask(IncomingQuestion("what time does the cafeteria close on fridays?"))
    assert reviewed.source == "reviewed"
    with pytest.raises(QuestionError):
        await bot.ask(IncomingQuestion("x" * 5000))

    digest = build_digest(bot.storage, bot.review)

    assert digest.asked == 8 and digest.refused == 1
    assert (digest.answered_from_policy, digest.answered_reviewed, digest.sent_to_review) == (
        3,
        1,
        4,
    )
    assert digest.answered_rate == pytest.approx(4 / 8)
    assert digest.open_groups == 1 and digest.groups_answered == 1
    (premium,) = digest.top_groups
    assert premium.count == 3 and "LinkedIn" in premium.sample
    assert digest.new_groups_by_owner == {premium.owner: 1}
    assert digest.cited[0].section == "3.3" and digest.cited[0].count == 2
    assert digest.cited[0].owner == "Legal"

    text = digest.text
    assert "8 asked" in text and "Answered rate 50%" in text
    assert f"#{premium.id}: 3 asked" in text and "can I expense LinkedIn Premium?" in text
    assert "3.3 Unreleased services, roadmaps and internal projects (Legal): 2" in text
    assert f"{premium.owner or '(no section close'}" in text
    assert digest.as_json()["most_cited"][0]["count"] == 2


def test_digest_of_an_empty_week_says_so(bot: PolicyBot) -> None:
    digest = build_digest(bot.storage, bot.review, now=datetime(2020, 1, 8, tzinfo=UTC))
    assert digest.asked == 0 and digest.answered_rate == 0.0
    assert "2020-01-01 to 2020-01-08" in digest.text
    assert "none: the review list is empty" in digest.text


async def test_digest_is_posted_to_every_registered_channel() -> None:
    slack, teams = RecordingChannelPoster(), RecordingChannelPoster(fail=True)
    results = await post_digest("the digest", {"slack": slack, "teams": teams})
    assert slack.posts == ["the digest"]
    assert results["slack"] == "posted" and "channel_not_found" in results["teams"]
    assert await post_digest("the digest", {}) == {}
