"""The trends behind the console's charts and the digest's picture: questions per ISO week by
how they were answered, the answered rate, the most cited sections, the topics that keep
coming back and the feedback per section, counted on both engines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date

import pytest

from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor
from bot.review.groups import ReviewError
from bot.review.trends import NO_SECTION, answer_kind, build_trends, date_range
from bot.store.database import Storage
from tests.trend_data import known_weeks

REVIEWER = Actor("slack", "UREVIEW", "Rae Reviewer")


@pytest.fixture
def engine_bot(settings: Settings, new_storage: Callable[[], Storage]) -> Iterator[PolicyBot]:
    policy_bot = PolicyBot.create(
        replace(settings, slack_policy_team=("UREVIEW",), admins=("teams:AADMIN",)),
        storage=new_storage(),
    )
    policy_bot.ensure_policy()
    yield policy_bot
    policy_bot.mark.release()


async def test_weekly_counts_rate_sections_topics_and_feedback(engine_bot: PolicyBot) -> None:
    bot = engine_bot
    ids = await known_weeks(bot)

    trends = build_trends(bot.storage, bot.review, date(2026, 3, 2), date(2026, 3, 29))

    assert [w.week for w in trends.weeks] == ["2026-W10", "2026-W11", "2026-W12", "2026-W13"]
    counts = [(w.from_policy, w.reviewed, w.uncertain, w.not_covered) for w in trends.weeks]
    assert counts == [(2, 0, 0, 1), (1, 0, 1, 1), (0, 1, 0, 0), (0, 0, 0, 0)]
    rates = [w.answered_rate for w in trends.weeks]
    assert rates == [pytest.approx(2 / 3), pytest.approx(1 / 3), 1.0, None]
    assert trends.refused == 1 and trends.asked == 7

    top = trends.cited[0]
    assert (top.section, top.count, top.owner) == ("3.3", 2, "Legal")
    assert top.title.startswith("Unreleased")

    (topic,) = trends.recurring
    assert topic.group_id == ids["cafeteria"] and topic.status == "answered"
    # The reviewed answer's asker is not an uncovered question: two questions, two weeks.
    assert (topic.questions, topic.weeks) == (2, 2)
    assert (topic.first_week, topic.last_week) == ("2026-W10", "2026-W11")

    by_reference = {f.reference: (f.helpful, f.not_helpful) for f in trends.feedback}
    assert by_reference[top.reference] == (1, 0)
    assert by_reference[NO_SECTION] == (1, 0)
    assert sum(h + n for h, n in by_reference.values()) >= 3
    assert any(n == 1 for _, n in by_reference.values())


async def test_a_range_counts_only_its_own_days(engine_bot: PolicyBot) -> None:
    bot = engine_bot
    await known_weeks(bot)
    # From Wednesday of W10: the Monday roadmap question is outside; the week still shows.
    trends = build_trends(bot.storage, bot.review, date(2026, 3, 4), date(2026, 3, 10))
    assert [(w.week, w.asked) for w in trends.weeks] == [("2026-W10", 2), ("2026-W11", 1)]
    assert trends.refused == 1


def test_the_digest_and_the_trends_classify_alike(bot: PolicyBot) -> None:
    row = bot.storage.question(
        bot.storage.log_question(
            {
                "platform": "slack",
                "text": "q",
                "answered": 1,
                "outcome": "answered",
                "answer_source": "reviewed",
                "status": "answered",
            }
        )
    )
    assert answer_kind(row) == "reviewed"
    assert answer_kind(replace(row, answer_source="extractive")) == "from_policy"
    assert answer_kind(replace(row, answer_source="", outcome="uncertain")) == "uncertain"
    assert answer_kind(replace(row, answer_source="failed", outcome="not_covered")) == "not_covered"
    assert answer_kind(replace(row, status="refused")) is None


def test_date_range_defaults_and_refusals() -> None:
    today = date(2026, 3, 19)  # a Thursday in W12
    first, last = date_range(today=today)
    assert last == today and first.weekday() == 0
    assert (last - first).days // 7 + 1 == 12
    assert date_range("2026-01-01", "2026-01-31") == (date(2026, 1, 1), date(2026, 1, 31))
    with pytest.raises(ReviewError, match="write it like"):
        date_range("01/03/2026", "")
    with pytest.raises(ReviewError, match="swap"):
        date_range("2026-03-10", "2026-03-01")
    with pytest.raises(ReviewError, match="at most 104 weeks"):
        date_range("2020-01-01", "2026-01-01")


async def test_trends_are_for_the_policy_team_and_admins_only(
    engine_bot: PolicyBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = engine_bot
    await known_weeks(bot)
    reply = await bot.trends(REVIEWER, "2026-03-02", "2026-03-22")
    assert reply.trends is not None and reply.trends.asked == 7
    admin = await bot.trends(Actor("teams", "AADMIN"), "2026-03-02", "2026-03-22")
    assert admin.trends is not None

    with caplog.at_level("WARNING", logger="policybot.security"):
        refused = await bot.trends(Actor("slack", "USTRANGER"), "2026-03-02", "2026-03-22")
    assert refused.trends is None and refused.refusal
    assert "not in the policy team" in caplog.text and "USTRANGER" in caplog.text

    bad = await bot.trends(REVIEWER, "yesterday", "")
    assert bad.trends is None and "write it like" in bad.problem
