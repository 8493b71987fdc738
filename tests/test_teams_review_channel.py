"""The policy team's review channel in Teams (POLICYBOT_TEAMS_REVIEW_CONVERSATION), over HTTP:
questions that reach the review list are posted there as cards through the connector stub,
beside the asker's own reply, and a refused post never costs the asker the answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters import teams
from adapters.server import build_app
from bot.config import Settings
from bot.core import PolicyBot
from tests.fakes.bot_connector import Call, ConnectorStub
from tests.fakes.loopback import serving
from tests.fakes.teams_activities import PERSONAL, card_submit, message
from tests.fakes.teams_harness import card_text, post, submit_data

REVIEW = "19:policy-review@thread.tacv2"
UNCOVERED = "what time does the cafeteria open?"
COVERED = "may I share our unreleased roadmap on LinkedIn?"


@pytest.fixture
def review_options(stub: ConnectorStub) -> dict[str, Any]:
    return {"teams_review_conversation": REVIEW, "teams_service_url": stub.url}


@pytest.fixture
async def review_server(
    bot_with: Callable[..., PolicyBot], review_options: dict[str, Any]
) -> AsyncIterator[tuple[PolicyBot, str]]:
    """The app with a review conversation configured, and its core."""
    bot = bot_with(**review_options)
    async with serving(build_app(bot)) as base:
        yield bot, base


def facts(card: dict[str, Any]) -> dict[str, str]:
    return {
        fact["title"]: fact["value"]
        for block in card["body"]
        if block["type"] == "FactSet"
        for fact in block["facts"]
    }


def review_posts(stub: ConnectorStub) -> list[Call]:
    return stub.in_conversation(REVIEW)


async def answered(base: str, stub: ConnectorStub) -> dict[str, dict[str, Any]]:
    """Ask a question the policy covers; the submit data of its card's buttons."""
    before = len(stub.calls)
    await post(base, message(COVERED, stub.url))
    reply = (await stub.received(before + 1))[-1]
    assert reply.conversation_id == PERSONAL["id"] and reply.card is not None
    return submit_data(reply.card)


async def test_an_uncovered_question_is_posted_to_the_review_conversation(
    review_server: tuple[PolicyBot, str], stub: ConnectorStub
) -> None:
    bot, base = review_server
    await post(base, message(UNCOVERED, stub.url))
    reply, notice = await stub.received(2)
    # The asker is answered first, in their own chat; then the policy team hears of it.
    assert reply.conversation_id == PERSONAL["id"]
    assert "does not cover this" in card_text(reply.card or {})
    assert notice.conversation_id == REVIEW
    assert notice.method == "POST" and notice.activity_id == ""  # a new post in the channel
    (question,) = bot.open_questions()
    card = notice.card
    assert card is not None and card["type"] == "AdaptiveCard"
    assert f"“{UNCOVERED}”" in card_text(card)
    assert facts(card)["Why"] == "not covered by the policy"
    assert facts(card)["Question"] == f"#{question['id']}"
    assert facts(card)["Group"] == f"#{question['group_id']}"
    # POLICYBOT_SHOW_ASKERS is off: the asker is nowhere on the card.
    assert "29:alice" not in str(card) and "Alice" not in str(card)
    assert notice.body.get("summary", "").startswith("Question for the policy team")


async def test_not_helpful_and_ask_the_policy_team_are_posted_but_helpful_is_not(
    review_server: tuple[PolicyBot, str], stub: ConnectorStub
) -> None:
    _, base = review_server
    buttons = await answered(base, stub)
    await post(base, card_submit("helpful", buttons["Helpful"]["question_id"], stub.url))
    assert stub.calls[-1].text == "Thanks, noted."
    assert review_posts(stub) == []

    await post(base, card_submit("not_helpful", buttons["Not helpful"]["question_id"], stub.url))
    assert "review list" in stub.calls[-2].text  # the asker's confirmation comes first
    (not_helpful,) = review_posts(stub)
    card = not_helpful.card or {}
    assert facts(card)["Why"] == "answer marked not helpful"
    assert facts(card)["Question"] == f"#{buttons['Helpful']['question_id']}"
    assert f"“{COVERED}”" in card_text(card)  # read back from the log: the press has no text

    escalate = (await answered(base, stub))["Ask the policy team"]
    await post(base, card_submit("ask_policy_team", escalate["question_id"], stub.url))
    assert facts(review_posts(stub)[-1].card or {})["Why"] == "asker wants the policy team"
    assert len(review_posts(stub)) == 2


async def test_the_asker_is_named_only_with_show_askers(
    bot_with: Callable[..., PolicyBot], review_options: dict[str, Any], stub: ConnectorStub
) -> None:
    bot = bot_with(show_askers=True, **review_options)
    async with serving(build_app(bot)) as base:
        await post(base, message(UNCOVERED, stub.url))
    (notice,) = review_posts(stub)
    assert "Asked by 29:alice" in card_text(notice.card or {})


async def test_without_the_setting_nothing_is_posted_to_a_review_conversation(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    async with serving(build_app(bot)) as base:
        assert "teams" not in bot.review_posters
        await post(base, message(UNCOVERED, stub.url))
        buttons = await answered(base, stub)
        await post(base, card_submit("not_helpful", buttons["Helpful"]["question_id"], stub.url))
    # Each turn is over when its request returns: only the asker's own chat heard anything.
    assert {call.conversation_id for call in stub.calls} == {PERSONAL["id"]}
    assert len(stub.calls) == 3
    assert len(bot.open_questions()) == 2  # both are on the review list all the same


async def test_a_refused_review_post_does_not_cost_the_asker_the_answer(
    review_server: tuple[PolicyBot, str], stub: ConnectorStub, caplog: pytest.LogCaptureFixture
) -> None:
    bot, base = review_server
    stub.refuse_conversations.add(REVIEW)  # e.g. the bot was removed from the team
    with caplog.at_level(logging.ERROR, logger="bot.core"):
        status, _ = await post(base, message(UNCOVERED, stub.url))
        buttons = await answered(base, stub)
        await post(base, card_submit("not_helpful", buttons["Helpful"]["question_id"], stub.url))
    assert status in (200, 201)
    in_chat = stub.in_conversation(PERSONAL["id"])
    assert "does not cover this" in card_text(in_chat[0].card or {})
    assert "review list" in in_chat[-1].text
    assert all(call.text != teams.APOLOGY for call in in_chat)  # no "something went wrong"
    assert len(in_chat) == 3
    assert len(review_posts(stub)) == 2  # each tried once, refused
    failures = [r for r in caplog.records if "teams review channel" in r.getMessage()]
    assert len(failures) == 2
    assert {q["review_reason"] for q in bot.open_questions()} == {"not_covered", "not_helpful"}


def test_the_review_conversation_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).teams_review_conversation == ""
    settings = Settings.from_env({"POLICYBOT_TEAMS_REVIEW_CONVERSATION": f" {REVIEW} "})
    assert settings.teams_review_conversation == REVIEW
