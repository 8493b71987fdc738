"""Conversations that continue, over the real servers on 127.0.0.1: a follow-up in a Slack
thread (the DM's agent thread, a channel thread after an @mention) and in a Teams personal
chat or channel reply chain is answered with the asker's earlier question; a new topic in the
same thread, another asker's question and another thread are not dragged into it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.server import build_app
from bot.config import Settings
from bot.core import PolicyBot
from tests.fakes.bot_connector import ConnectorStub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.slack_api import BOT_USER, fake_slack_api
from tests.fakes.slack_harness import SlackHarness, all_text, slack_server
from tests.fakes.teams_activities import BOB, CHANNEL, PERSONAL, message
from tests.fakes.teams_harness import card_text, post
from tests.reliability import percentiles, record

FIRST = "can i say i work at brightwater in my instagram bio"
FOLLOW = "what about linkedin?"
SWITCH = "is it ok to film inside the sorting centre for tiktok"
TAKEN = f"Taking this as: {FIRST} — {FOLLOW}"
COMMAND = "pytest tests/test_reliability_conversations.py"


@pytest.fixture
async def agent_slack(settings: Settings) -> AsyncIterator[SlackHarness]:
    async with fake_slack_api() as api:
        api.agent_view = True
        async with slack_server(settings, api=api) as harness:
            yield harness


def dm(text: str, ts: str, thread_ts: str | None = None, user: str = "U123") -> dict[str, Any]:
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": "D" + user.lstrip("U"),
        "user": user,
        "text": text,
        "ts": ts,
    }
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


def mention(text: str, ts: str, thread_ts: str | None = None, user: str = "U123") -> dict[str, Any]:
    event = {
        "type": "app_mention",
        "channel": "C100",
        "user": user,
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
    }
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


async def test_a_slack_thread_follow_up_is_answered_in_context_and_a_new_topic_is_not(
    agent_slack: SlackHarness,
) -> None:
    api = agent_slack.api
    root = "1700000300.000001"
    asked = [
        # The DM's agent thread: its first question, a follow-up, then a new topic.
        dm(FIRST, root),
        dm(FOLLOW, "1700000300.000002", root),
        dm(SWITCH, "1700000300.000003", root),
        # A channel thread after an @mention, and a second asker's follow-up in it.
        mention(FIRST, "1700000400.000001"),
        mention(FOLLOW, "1700000400.000002", "1700000400.000001"),
        mention(FOLLOW, "1700000400.000003", "1700000400.000001", user="U777"),
        # The same follow-up in a thread of its own: nothing to continue.
        dm(FOLLOW, "1700000500.000001"),
    ]
    latencies: list[float] = []
    for number, event in enumerate(asked, 1):
        started = time.perf_counter()
        await agent_slack.event(event)
        await api.wait_for("chat.postMessage", number)
        latencies.append((time.perf_counter() - started) * 1000)
    posts = api["chat.postMessage"]
    shown = [all_text(p["blocks"]) for p in posts]
    in_context = [TAKEN in text for text in shown]
    assert in_context == [False, True, False, False, True, False, False]
    assert posts[1]["thread_ts"] == root and posts[4]["thread_ts"] == "1700000400.000001"
    rows = sorted(agent_slack.bot.storage.questions(status=None), key=lambda r: r.id)
    assert [r.standalone is not None for r in rows] == in_context
    # One key per thread, none of Slack's ids in the log.
    keys = [r.conversation_key or "" for r in rows]
    assert keys[0] == keys[1] == keys[2] != keys[3] == keys[4] == keys[5] != keys[6]
    assert not any("D123" in k or "C100" in k or "1700000" in k for k in keys)
    record(
        "Conversations: follow-ups in Slack threads",
        COMMAND,
        questions=len(asked),
        follow_ups_in_context=sum(in_context),
        topic_switches_dragged=int(in_context[2]),
        other_askers_or_threads_dragged=int(in_context[5]) + int(in_context[6]),
        **{f"answer_{k}": v for k, v in percentiles(latencies).items()},
    )


async def test_a_teams_follow_up_is_answered_in_context_in_a_chat_and_a_reply_chain(
    bot_with: Callable[..., PolicyBot], stub: ConnectorStub
) -> None:
    bot = bot_with(teams_unauthenticated=True)  # as `local_teams`: on loopback only
    chain = {**CHANNEL, "id": "19:general@thread.tacv2;messageid=1700000000999"}
    asked = [
        message(FIRST, stub.url),
        message(FOLLOW, stub.url),
        message(SWITCH, stub.url),
        message(FIRST, stub.url, conversation=CHANNEL, mention_bot=True),
        message(FOLLOW, stub.url, conversation=CHANNEL, mention_bot=True),
        message(FOLLOW, stub.url, conversation=CHANNEL, mention_bot=True, sender=BOB),
        message(FOLLOW, stub.url, conversation=chain, mention_bot=True),
    ]
    latencies: list[float] = []
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        for number, activity in enumerate(asked, 1):
            started = time.perf_counter()
            status, _ = await post(base, activity)
            assert status in (200, 201, 202)
            await stub.received(number)
            latencies.append((time.perf_counter() - started) * 1000)
    cards = [call.card for call in stub.calls]
    in_context = [card is not None and TAKEN in card_text(card) for card in cards]
    assert in_context == [False, True, False, False, True, False, False]
    assert stub.calls[1].conversation_id == PERSONAL["id"]
    assert stub.calls[4].conversation_id == CHANNEL["id"]
    rows = sorted(bot.storage.questions(status=None), key=lambda r: r.id)
    assert [r.standalone is not None for r in rows] == in_context
    assert not any("personal-chat" in (r.conversation_key or "") for r in rows)
    record(
        "Conversations: follow-ups in Teams chats and reply chains",
        COMMAND,
        questions=len(asked),
        follow_ups_in_context=sum(in_context),
        topic_switches_dragged=int(in_context[2]),
        other_askers_or_chains_dragged=int(in_context[5]) + int(in_context[6]),
        **{f"answer_{k}": v for k, v in percentiles(latencies).items()},
    )
