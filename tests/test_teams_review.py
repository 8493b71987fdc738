"""The review loop in Teams over HTTP: askers ask in their personal chats, a policy-team member
answers the group on a card, and every asker gets a proactive message on the connector stub;
the digest goes to a channel; the server's background task delivers pending answers."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.server import build_app
from bot import messages
from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.review.digest import build_digest, post_digest
from tests.fakes.bot_connector import Call, ConnectorStub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.teams_activities import (
    ALICE,
    BOB,
    BOB_PERSONAL,
    PAT,
    PAT_PERSONAL,
    PERSONAL,
    message,
    submit,
)
from tests.fakes.teams_harness import card_text, local_teams, post, post_turn, submit_data


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return local_teams(settings)


ROOT = Path(__file__).resolve().parent.parent
DOG_QUESTIONS = {
    "alice": "can I bring my dog to the office",
    "bob": "are dogs allowed at the office?",
}
LATER = "is it ok to have my dog with me at the office"
ANSWER = "Dogs are welcome at the depots' offices on Fridays; ask Facilities first."
DIGEST_CHANNEL = "19:policy-team@thread.tacv2"

ASKERS = {"alice": (ALICE, PERSONAL), "bob": (BOB, BOB_PERSONAL)}


@pytest.fixture
def team_bot(bot_with: Callable[..., PolicyBot]) -> PolicyBot:
    return bot_with(teams_policy_team=("aad-pat",))


async def ask_and_escalate(base: str, stub: ConnectorStub, who: str, text: str) -> None:
    """Ask in the asker's personal chat; an answered question is sent on with the card's
    "Ask the policy team", so it reaches the review list either way."""
    sender, conversation = ASKERS[who]
    await reply_to(base, stub, message(text, stub.url, sender=sender, conversation=conversation))
    escalate = submit_data(stub.calls[-1].card or {}).get("Ask the policy team")
    if escalate:
        await reply_to(
            base, stub, submit(escalate, stub.url, sender=sender, conversation=conversation)
        )


async def reply_to(
    base: str, stub: ConnectorStub, activity: dict[str, Any], replies: int = 1
) -> list[Call]:
    """Post an activity and wait for the bot's replies to it."""
    before = len(stub.calls)
    await post(base, activity)
    return (await stub.received(before + replies))[before:]


def as_pat(value: dict[str, Any], url: str) -> dict[str, Any]:
    return submit(value, url, sender=PAT, conversation=PAT_PERSONAL)


async def test_review_answer_reaches_every_asker_and_later_questions(
    team_bot: PolicyBot, stub: ConnectorStub
) -> None:
    async with serving(build_app(team_bot, host=LOOPBACK)) as base:
        for who, text in DOG_QUESTIONS.items():
            await ask_and_escalate(base, stub, who, text)
        (review,) = await reply_to(
            base, stub, message("review", stub.url, sender=PAT, conversation=PAT_PERSONAL)
        )
        assert review.conversation_id == PAT_PERSONAL["id"]
        assert review.text.startswith("1 open question group")
        (card,) = review.cards
        text = card_text(card)
        assert text.startswith("2 questions: “can I bring my dog to the office”")
        assert "29:alice" not in str(card) and "Alice" not in str(card)
        answer_data = submit_data(card)["Answer"]

        calls = await reply_to(base, stub, as_pat({**answer_data, "answer": ANSWER}, stub.url), 3)
        deliveries, confirmation = calls[:-1], calls[-1]
        assert {c.conversation_id for c in deliveries} == {PERSONAL["id"], BOB_PERSONAL["id"]}
        for call in deliveries:
            assert call.method == "POST" and call.activity_id == ""  # a new message
            assert ANSWER in call.text and call.text.startswith("You asked: “")
        assert confirmation.conversation_id == PAT_PERSONAL["id"]
        assert "2 sent, 0 pending" in confirmation.text

        (group,) = team_bot.review.groups(status="answered")
        assert group.answer == ANSWER and group.answered_by == "Pat Policy (teams:aad-pat)"
        (later,) = await reply_to(base, stub, message(LATER, stub.url, sender=ALICE))
        assert "reviewed answer" in card_text(later.card or {})
        assert ANSWER in card_text(later.card or {})


async def test_review_actions_are_for_the_policy_team_and_need_an_answer(
    team_bot: PolicyBot, stub: ConnectorStub
) -> None:
    async with serving(build_app(team_bot, host=LOOPBACK)) as base:
        await ask_and_escalate(base, stub, "alice", DOG_QUESTIONS["alice"])
        (group,) = team_bot.review.groups()
        data = {"policybot": "answer_group", "group_id": group.id}
        sent_before = len(stub.calls)
        await post_turn(base, submit({**data, "answer": ANSWER}, stub.url, sender=ALICE))
        await post_turn(base, as_pat({**data, "answer": "   "}, stub.url))
        await post_turn(base, as_pat({"policybot": "answer_group", "group_id": "x"}, stub.url))
        await post_turn(
            base, as_pat({"policybot": "answer_group", "group_id": 999, "answer": ANSWER}, stub.url)
        )
        calls = (await stub.received(sent_before + 4))[sent_before:]
        assert calls[0].text == messages.NOT_POLICY_TEAM_ACTION
        assert "answer is empty" in calls[1].text
        assert calls[2].text == messages.STALE_GROUP
        assert "no question group 999" in calls[3].text
        assert [g.id for g in team_bot.review.groups("open")] == [group.id]

        await post_turn(
            base, as_pat({"policybot": "dismiss_group", "group_id": group.id}, stub.url)
        )
        dismissed = (await stub.received(sent_before + 5))[-1]
        assert f"Group #{group.id} dismissed" in dismissed.text
        assert team_bot.review.group(group.id).status == "dismissed"
        assert len(stub.calls) == sent_before + 5  # nobody else was sent anything

        await post_turn(base, message("review", stub.url, sender=PAT, conversation=PAT_PERSONAL))
        empty = (await stub.received(sent_before + 6))[-1]
        assert "review list is empty" in empty.text and empty.card is None


async def test_digest_is_posted_to_the_teams_channel(
    bot_with: Callable[..., PolicyBot], stub: ConnectorStub
) -> None:
    bot = bot_with(
        teams_policy_team=("aad-pat",),
        digest_teams_conversation=DIGEST_CHANNEL,
        teams_service_url=stub.url,
    )
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await ask_and_escalate(base, stub, "alice", DOG_QUESTIONS["alice"])
        digest = build_digest(bot.storage, bot.review)
        assert await post_digest(digest.text, bot.channel_posters) == {"teams": "posted"}
        posted = stub.calls[-1]
    assert posted.conversation_id == DIGEST_CHANNEL and posted.activity_id == ""
    text = card_text(posted.card or {})
    assert text.startswith("policybot weekly digest") and "Top open groups:" in text
    assert DOG_QUESTIONS["alice"] in text


async def test_digest_command_posts_to_the_teams_channel(
    tmp_path: Path, stub: ConnectorStub
) -> None:
    env = {
        **os.environ,
        "POLICYBOT_DB": str(tmp_path / "policybot.db"),
        "POLICYBOT_DIGEST_TEAMS_CONVERSATION": DIGEST_CHANNEL,
        "POLICYBOT_TEAMS_SERVICE_URL": stub.url,
    }
    for name in ("MicrosoftAppId", "MicrosoftAppPassword", "MicrosoftAppType"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "digest",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert "teams: posted" in stderr.decode()
    (posted,) = stub.calls
    assert posted.conversation_id == DIGEST_CHANNEL
    assert card_text(posted.card or {}).splitlines()[0] == stdout.decode().splitlines()[0]


async def test_serve_delivers_pending_reviewed_answers_in_the_background(
    bot_with: Callable[..., PolicyBot], stub: ConnectorStub
) -> None:
    bot = bot_with(teams_policy_team=("aad-pat",), delivery_interval=0.01)
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await ask_and_escalate(base, stub, "alice", DOG_QUESTIONS["alice"])
        (group,) = bot.review.groups()
        sent_before = len(stub.calls)
        # Answered where no platform is connected (as `policybot questions answer` does):
        # the delivery waits for the server's background task.
        bot.review.answer(group.id, ANSWER, "cli")
        delivered: Call = (await stub.received(sent_before + 1))[-1]
        async with asyncio.timeout(10):  # the address is deleted once Teams took the message
            while bot.storage.pending_deliveries(None):
                await asyncio.sleep(0.01)
    assert delivered.conversation_id == PERSONAL["id"] and ANSWER in delivered.text
    assert len(stub.calls) == sent_before + 1  # sent once, not again on later runs


def test_delivery_and_service_url_settings_are_read_and_checked() -> None:
    default = Settings.from_env({})
    assert default.delivery_interval == 60.0
    assert default.teams_service_url == "https://smba.trafficmanager.net/teams/"
    settings = Settings.from_env(
        {
            "POLICYBOT_DELIVERY_INTERVAL": "0",
            "POLICYBOT_TEAMS_SERVICE_URL": "https://smba.trafficmanager.net/emea/",
        }
    )
    assert settings.delivery_interval == 0
    assert settings.teams_service_url.endswith("/emea/")
    with pytest.raises(ConfigError, match="POLICYBOT_DELIVERY_INTERVAL"):
        Settings.from_env({"POLICYBOT_DELIVERY_INTERVAL": "-1"})
    with pytest.raises(ConfigError, match="POLICYBOT_TEAMS_SERVICE_URL"):
        Settings.from_env({"POLICYBOT_TEAMS_SERVICE_URL": "smba.trafficmanager.net"})
