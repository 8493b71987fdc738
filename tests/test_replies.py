"""How a slow or failed answer ends, the same on Slack and Teams (adapters/replies.py): the
asker gets the answer, the core's refusal or the apology, and never a placeholder left behind."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from adapters.replies import APOLOGY
from adapters.teams import app as teams_app
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from tests.fakes.answerers import BrokenAnswerer, GatedAnswerer
from tests.fakes.bot_connector import ConnectorStub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.slack_harness import slack_server
from tests.fakes.teams_activities import message
from tests.fakes.teams_harness import card_text, local_teams, post


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return local_teams(settings)


ROADMAP = "may I share our unreleased roadmap on LinkedIn?"


async def test_slack_failure_becomes_the_apology(settings: Settings) -> None:
    async with slack_server(settings) as slack:
        slack.bot.answerer = BrokenAnswerer()
        await slack.dm(ROADMAP)
        (post_,) = await slack.api.wait_for("chat.postMessage")
        assert post_["channel"] == "D123" and post_["text"] == APOLOGY


async def test_slack_answer_is_posted_when_the_placeholder_could_not_be(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.replies.THINKING_DELAY", 0.0)
    async with slack_server(settings) as slack:
        # Slack refuses the first post (the placeholder); the answer still arrives, as a post.
        slack.api.failures["chat.postMessage"].append((400, {}))
        slow = GatedAnswerer()
        slack.bot.answerer = slow
        await slack.dm(ROADMAP)
        await slack.api.wait_for("chat.postMessage")
        slow.release()
        placeholder, answer = await slack.api.wait_for("chat.postMessage", 2)
        assert placeholder["text"] == messages.THINKING
        assert answer["channel"] == "D123" and "3.3" in str(answer["blocks"])
        assert slack.api["chat.update"] == []
        assert [q.text for q in slack.bot.storage.questions(status=None)] == [ROADMAP]


def teams_server(bot: PolicyBot, placeholder_after: float) -> web.Application:
    app = web.Application()
    teams_app.add_routes(app, bot, listen_host=LOOPBACK, placeholder_after=placeholder_after)
    return app


async def test_teams_failure_becomes_the_apology(bot: PolicyBot, stub: ConnectorStub) -> None:
    bot.answerer = BrokenAnswerer()
    async with serving(teams_server(bot, 60.0)) as base:
        await post(base, message(ROADMAP, stub.url))
        (reply,) = await stub.received(1)
    assert reply.text == APOLOGY and reply.card is None


async def test_teams_failure_after_the_placeholder_replaces_it_with_the_apology(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    gated = GatedAnswerer(BrokenAnswerer())
    bot.answerer = gated
    async with serving(teams_server(bot, 0.0)) as base:
        request = asyncio.ensure_future(post(base, message(ROADMAP, stub.url)))
        (placeholder,) = await stub.received(1)
        assert placeholder.text == messages.THINKING
        gated.release()
        await request
        _, apology = await stub.received(2)
    assert apology.method == "PUT" and apology.text == APOLOGY


async def test_teams_answer_is_sent_anew_when_the_placeholder_cannot_be_edited(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    stub.refuse_updates = True
    gated = GatedAnswerer()
    bot.answerer = gated
    async with serving(teams_server(bot, 0.0)) as base:
        request = asyncio.ensure_future(post(base, message(ROADMAP, stub.url)))
        await stub.received(1)
        gated.release()
        await request
        calls = await stub.received(3)
    assert [c.method for c in calls] == ["POST", "PUT", "POST"]
    assert calls[2].card is not None and "3.3" in card_text(calls[2].card)
    assert [q.text for q in bot.storage.questions(status=None)] == [ROADMAP]
