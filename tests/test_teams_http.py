"""Teams end to end over HTTP: Activity JSON posted to /api/messages of the real app, replies
recorded by a Bot Framework connector stub on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from adapters.server import build_app
from adapters.teams import app as teams_app
from bot import messages
from bot.cli import main
from bot.config import Settings
from bot.core import PolicyBot
from bot.notify import DeliveryError, ReplyAddress
from tests.bands import uncertain_for
from tests.fakes.answerers import GatedAnswerer
from tests.fakes.bot_connector import ConnectorStub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.teams_activities import (
    ALICE,
    BOT,
    CHANNEL,
    GROUP_CHAT,
    PAT,
    PERSONAL,
    card_submit,
    members_added,
    message,
)
from tests.fakes.teams_harness import (
    card_text,
    local_teams,
    post,
    submit_data,
    turns_finished,
)

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return local_teams(settings)


@pytest.fixture
async def server(bot: PolicyBot) -> AsyncIterator[str]:
    async with serving(build_app(bot, host=LOOPBACK)) as url:
        yield url


async def test_done_when_card_quotes_clauses_and_not_helpful_reaches_the_review_list(
    tmp_path: Path, stub: ConnectorStub
) -> None:
    db = tmp_path / "policybot.db"
    bot = PolicyBot.create(local_teams(Settings(db_path=str(db))))
    bot.ensure_policy()
    try:
        async with serving(build_app(bot, host=LOOPBACK)) as base:
            status, _ = await post(base, message(ROADMAP, stub.url))
            assert status in (200, 201, 202)
            (reply,) = await stub.received(1)
            assert reply.method == "POST" and reply.conversation_id == PERSONAL["id"]
            card = reply.card
            assert card is not None and card["type"] == "AdaptiveCard"
            row = bot.storage.questions(status=None)[0]
            cited = bot.storage.clauses_by_id([c["clause_id"] for c in row.citations])
            text = card_text(card)
            assert row.citations[0]["section"] == "3.3"
            for stored in cited.values():
                assert f"“{stored.clause.text}”" in text
                assert stored.clause.reference in text
            actions = submit_data(card)
            assert list(actions) == ["Helpful", "Not helpful", "Ask the policy team"]
            assert actions["Not helpful"] == {"policybot": "not_helpful", "question_id": row.id}

            status, _ = await post(base, card_submit("not_helpful", row.id, stub.url, sender=ALICE))
            calls = await stub.received(2)
            assert "review list" in calls[1].text
    finally:
        bot.storage.close()

    result = CliRunner().invoke(main, ["--db", str(db), "questions", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in result.output.splitlines()]
    assert [(q["id"], q["review_reason"], q["platform"]) for q in listed] == [
        (row.id, "not_helpful", "teams")
    ]
    table = CliRunner().invoke(main, ["--db", str(db), "questions", "list"])
    assert "not_helpful" in table.output and "unreleased roadmap" in table.output


async def test_unanswered_question_says_so_and_offers_no_feedback_buttons(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    await post(server, message("what time does the cafeteria open?", stub.url))
    (reply,) = await stub.received(1)
    assert reply.card is not None
    assert "does not cover this" in card_text(reply.card)
    assert "actions" not in reply.card
    assert [q.review_reason for q in bot.open_questions()] == ["not_covered"]


async def test_an_uncertain_answer_card_is_marked_and_rated_without_escalation(
    settings: Settings, bot_with: Callable[..., PolicyBot], stub: ConnectorStub
) -> None:
    band = uncertain_for(settings)
    bot = bot_with(
        min_confidence=band.min_confidence, uncertain_confidence=band.uncertain_confidence
    )
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message(ROADMAP, stub.url))
        (reply,) = await stub.received(1)
        assert reply.card is not None
        text = card_text(reply.card)
        marked = text.index(messages.UNCERTAIN_MARK)
        assert marked < text.index(messages.UNCERTAIN_NOTE) < text.index("I'm not sure the policy")
        # Possibly not what was asked: said beside the card too, for notifications.
        assert str(reply.body.get("summary", "")).startswith(messages.UNCERTAIN_MARK)
        row = bot.storage.questions(status=None)[0]
        cited = bot.storage.clauses_by_id([c["clause_id"] for c in row.citations])
        assert cited and all(f"“{c.clause.text}”" in text for c in cited.values())
        actions = submit_data(reply.card)
        assert list(actions) == ["Helpful", "Not helpful"]
        await post(base, card_submit("helpful", row.id, stub.url))
        calls = await stub.received(2)
        assert calls[1].text == messages.REACTION_NOTES["helpful"]
    assert bot.storage.question(row.id).feedback == "helpful"
    assert [(q.id, q.outcome, q.review_reason) for q in bot.open_questions()] == [
        (row.id, "uncertain", "uncertain")
    ]


async def test_channel_mention_is_stripped_and_the_reply_goes_to_the_thread(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    activity = message(ROADMAP, stub.url, conversation=CHANNEL, mention_bot=True)
    await post(server, activity)
    (reply,) = await stub.received(1)
    assert reply.conversation_id == CHANNEL["id"]
    assert reply.activity_id == activity["id"]  # a reply in the thread, not a new post
    assert reply.card is not None and "3.3" in card_text(reply.card)
    (logged,) = bot.storage.questions(status=None)
    assert logged.text == ROADMAP
    assert "PolicyBot" not in logged.text and "<at>" not in logged.text


async def test_channel_and_group_messages_without_a_mention_are_ignored(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    for conversation in (CHANNEL, GROUP_CHAT):
        status, _ = await post(server, message(ROADMAP, stub.url, conversation=conversation))
        assert status in (200, 201, 202)
    # A personal message afterwards proves the ignored ones were processed and produced nothing.
    await post(server, message("help", stub.url))
    (reply,) = await stub.received(1)
    assert reply.conversation_id == PERSONAL["id"] and "@mention" in reply.text
    assert bot.storage.questions(status=None) == []


async def test_card_actions_record_feedback_and_escalation(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    await post(server, message(ROADMAP, stub.url))
    await post(server, message("can I friend my boss on facebook?", stub.url))
    calls = await stub.received(2)
    first, second = (submit_data(c.card or {}) for c in calls)
    await post(server, card_submit("helpful", first["Helpful"]["question_id"], stub.url))
    await post(
        server,
        card_submit("ask_policy_team", second["Ask the policy team"]["question_id"], stub.url),
    )
    calls = await stub.received(4)
    assert calls[2].text == messages.REACTION_NOTES["helpful"]
    assert "policy team" in calls[3].text
    assert bot.storage.question(first["Helpful"]["question_id"]).feedback == "helpful"
    assert [(q.id, q.review_reason) for q in bot.open_questions()] == [
        (second["Helpful"]["question_id"], "ask_policy_team")
    ]


async def test_stale_or_forged_card_actions_get_a_message_and_change_nothing(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    await post(server, card_submit("not_helpful", 9999, stub.url))
    await post(server, card_submit("delete_everything", 1, stub.url))
    await post(server, card_submit("not_helpful", "1; DROP TABLE questions", stub.url))
    calls = await stub.received(3)
    assert all(call.text == messages.STALE_QUESTION for call in calls)
    assert bot.storage.questions(status=None) == []


async def test_welcome_on_install_and_for_people_in_personal_chat_only(
    server: str, stub: ConnectorStub
) -> None:
    await post(server, members_added([BOT], stub.url, conversation=CHANNEL))
    await post(server, members_added([ALICE], stub.url, conversation=PERSONAL))
    await post(server, members_added([PAT], stub.url, conversation=CHANNEL))
    await post(server, message("help", stub.url))
    calls = await stub.received(3)
    assert [(c.conversation_id, c.text.startswith("Hi, I'm the policy bot")) for c in calls] == [
        (CHANNEL["id"], True),
        (PERSONAL["id"], True),
        (PERSONAL["id"], False),  # the help reply: nobody welcomed Pat in the channel
    ]


async def test_review_lists_open_question_groups_for_the_policy_team_only(
    bot_with: Callable[..., PolicyBot], stub: ConnectorStub
) -> None:
    bot = bot_with(teams_policy_team=("aad-pat",))
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message("what time does the cafeteria open?", stub.url))
        await turns_finished()  # answered after its acknowledgement, in a task
        await post(base, message("review", stub.url, sender=ALICE))
        await post(
            base, message("review", stub.url, sender=PAT, conversation=CHANNEL, mention_bot=True)
        )
        await post(base, message("review", stub.url, sender=PAT))
        calls = await stub.received(4)
    assert calls[1].text == messages.NOT_POLICY_TEAM and calls[1].card is None
    assert calls[2].text == messages.REVIEW_IN_PRIVATE and calls[2].card is None
    review = calls[3].card
    assert review is not None
    assert calls[3].text.startswith("1 open question group")
    assert "cafeteria" in card_text(review)
    why = {
        f["title"]: f["value"] for b in review["body"] if b["type"] == "FactSet" for f in b["facts"]
    }
    assert why["Why"] == "not covered by the policy"


async def test_slow_answer_sends_a_placeholder_then_replaces_it(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    slow = GatedAnswerer()
    bot.answerer = slow
    app = web.Application()
    teams_app.add_routes(app, bot, listen_host=LOOPBACK, placeholder_after=0.01)
    async with serving(app) as base:
        request = asyncio.ensure_future(post(base, message(ROADMAP, stub.url)))
        (placeholder,) = await stub.received(1)
        assert placeholder.method == "POST" and placeholder.text == messages.THINKING
        slow.release()
        status, _ = await request
        calls = await stub.received(2)
    assert status in (200, 201, 202)
    assert len(calls) == 2
    update = calls[1]
    assert update.method == "PUT" and update.activity_id == "activity-1"
    assert update.card is not None and "3.3" in card_text(update.card)


async def test_fast_answer_sends_no_placeholder(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    await post(server, message(ROADMAP, stub.url))
    await turns_finished()
    await post(server, message("help", stub.url))
    calls = await stub.received(2)
    assert [c.method for c in calls] == ["POST", "POST"]
    assert calls[0].card is not None and messages.THINKING not in calls[0].text


async def test_bad_questions_get_the_core_message(server: str, stub: ConnectorStub) -> None:
    await post(server, message("may I post " * 400, stub.url))
    (reply,) = await stub.received(1)
    assert "characters long" in reply.text


async def test_requests_without_a_token_are_rejected_when_an_app_id_is_set(
    bot_with: Callable[..., PolicyBot], stub: ConnectorStub
) -> None:
    bot = bot_with(
        microsoft_app_id="00000000-0000-0000-0000-000000000001",
        microsoft_app_password="secret",
        teams_unauthenticated=False,
    )
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        status, _ = await post(base, message(ROADMAP, stub.url))
        assert status == 401
        # Not even a non-loopback serviceUrl gets past the token check to the bot.
        status, _ = await post(base, message(ROADMAP, "https://smba.example.com/"))
        assert status == 401
    assert stub.calls == []
    assert bot.storage.questions(status=None) == []


async def test_unauthenticated_mode_replies_only_to_loopback(bot: PolicyBot, server: str) -> None:
    status, body = await post(server, message(ROADMAP, "https://attacker.example.com/"))
    assert status == 403 and "loopback" in body
    assert bot.storage.questions(status=None) == []


async def test_malformed_requests_get_a_clear_error(server: str, stub: ConnectorStub) -> None:
    status, body = await post(
        server, None, raw=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "JSON" in body
    status, body = await post(server, None, raw=b"hello", headers={"Content-Type": "text/plain"})
    assert status == 415
    status, body = await post(server, {"text": "no type"})
    assert status == 400 and "activity" in body
    status, body = await post(server, ["a", "list"])
    assert status == 400
    # Fields of the wrong kind, which the SDK's activity model cannot read: 400 naming the
    # field, never a 500.
    wrong_kinds = message("hello", stub.url)
    wrong_kinds["conversation"] = "not an object"
    status, body = await post(server, wrong_kinds)
    assert status == 400 and "conversation" in body
    no_conversation = message("hello", stub.url)
    del no_conversation["conversation"]
    status, body = await post(server, no_conversation)
    assert status == 400
    assert stub.calls == []


async def test_notifier_replies_later_through_the_stored_conversation_reference(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    await post(server, message("what time does the cafeteria open?", stub.url))
    await stub.received(1)
    rows = bot.open_questions()
    (question,) = rows
    stored = bot.storage.reply_address(question.id)
    assert stored is not None and stored["platform"] == "teams"
    reference = json.loads(stored["conversation"])
    assert reference["serviceUrl"] == stub.url
    assert reference["conversation"]["id"] == PERSONAL["id"]

    notifier = bot.notifiers["teams"]
    await notifier.send(ReplyAddress(**stored), "The policy team answered your question: ...")
    calls = await stub.received(2)
    assert calls[1].conversation_id == PERSONAL["id"]
    assert calls[1].text.startswith("The policy team answered")


async def test_notifier_reports_undeliverable_messages(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    notifier = bot.notifiers["teams"]
    with pytest.raises(DeliveryError, match="conversation reference"):
        await notifier.send(ReplyAddress("teams", "29:alice", "not json"), "hello")
    with pytest.raises(DeliveryError, match="service URL"):
        await notifier.send(ReplyAddress("teams", "29:alice", "{}"), "hello")
    stub.refuse_with = 403  # what Teams answers once the user has removed the bot
    reference = {
        "serviceUrl": stub.url,
        "channelId": "msteams",
        "conversation": {"id": PERSONAL["id"]},
        "bot": BOT,
        "user": ALICE,
    }
    with pytest.raises(DeliveryError, match="did not take"):
        await notifier.send(ReplyAddress("teams", "29:alice", json.dumps(reference)), "hello")
    assert len(stub.calls) == 1  # tried once, and nothing else (no apology) was sent


async def test_unauthenticated_notifier_sends_nothing_off_loopback(
    bot: PolicyBot, server: str, stub: ConnectorStub
) -> None:
    # A reference kept while a client id was configured, found by a local test run without.
    reference = {
        "serviceUrl": "https://smba.invalid/teams/",
        "channelId": "msteams",
        "conversation": {"id": PERSONAL["id"]},
        "bot": BOT,
        "user": ALICE,
    }
    with pytest.raises(DeliveryError, match="loopback"):
        await bot.notifiers["teams"].send(
            ReplyAddress("teams", "29:alice", json.dumps(reference)), "hello"
        )
    assert stub.calls == []
