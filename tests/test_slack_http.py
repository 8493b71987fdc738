"""`policybot serve` with Slack configured, driven by signed requests against a fake Slack API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.slack import blocks as render
from adapters.slack.app import SLACK_ANSWERING, SLACK_APP
from bot import messages
from bot.config import Settings
from bot.models import IncomingQuestion
from tests.bands import uncertain_for
from tests.fakes.answerers import GatedAnswerer
from tests.fakes.slack_api import BOT_ID, BOT_USER
from tests.fakes.slack_harness import SlackHarness, action_ids, all_text, slack_server

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"


def mention(text: str, ts: str = "1700000001.000100", **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": "U123",
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "channel": "C100",
        "event_ts": ts,
        **extra,
    }


def dm(text: str, ts: str = "1700000002.000100", **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": "D123",
        "user": "U123",
        "text": text,
        "ts": ts,
        **extra,
    }


def cited_clause_texts(harness: SlackHarness) -> list[str]:
    """The full texts of the clauses the last logged question cites."""
    rows = harness.bot.storage.questions(status=None)
    ids = [c["clause_id"] for c in rows[0].citations]
    stored = harness.bot.storage.clauses_by_id(ids)
    return [stored[i].clause.text for i in ids]


async def test_signed_mention_is_acknowledged_then_answered_in_its_thread(
    slack: SlackHarness,
) -> None:
    response = await slack.event(mention(ROADMAP))
    assert response.status_code == 200
    (post,) = await slack.api.wait_for("chat.postMessage")
    assert post["channel"] == "C100" and post["thread_ts"] == "1700000001.000100"
    assert post["_token"] == "xoxb-test"
    blocks = all_text(post["blocks"])
    texts = cited_clause_texts(slack)
    assert texts and all(render.escape(t)[:80] in blocks for t in texts)
    assert "3.3" in blocks and "Unreleased services" in blocks
    assert action_ids(post["blocks"]) == {render.ACTION_FEEDBACK, render.ACTION_ESCALATE}
    row = slack.bot.storage.questions(status=None)[0]
    assert row.platform == "slack" and row.text == ROADMAP
    assert slack.bot.storage.reply_address(row.id) == {
        "platform": "slack",
        "user_id": "U123",
        "conversation": "C100/1700000001.000100",
    }


async def test_mention_inside_a_thread_answers_in_that_thread(slack: SlackHarness) -> None:
    await slack.event(mention(ROADMAP, ts="1700000009.000200", thread_ts="1700000005.000100"))
    (post,) = await slack.api.wait_for("chat.postMessage")
    assert post["thread_ts"] == "1700000005.000100"


async def test_bare_mention_gets_help(slack: SlackHarness) -> None:
    await slack.event(mention(""))
    (post,) = await slack.api.wait_for("chat.postMessage")
    assert "/policy" in post["text"] and post["thread_ts"] == "1700000001.000100"
    assert slack.bot.storage.questions(status=None) == []


@pytest.mark.parametrize(
    "problem",
    [
        {"secret": "not-the-secret"},
        {"age": 60 * 10},  # replayed: older than Slack's five minutes
    ],
    ids=["forged", "stale"],
)
async def test_bad_signatures_get_401_and_cause_nothing(
    slack: SlackHarness, problem: dict[str, Any]
) -> None:
    response = await slack.event(mention(ROADMAP), **problem)
    assert response.status_code == 401
    unsigned = await slack.http.post("/slack/events", json={"type": "event_callback"})
    assert unsigned.status_code == 401
    await asyncio.sleep(0)  # let anything wrongly scheduled run
    assert slack.api.total_calls == 0
    assert slack.bot.storage.questions(status=None) == []


async def test_forged_command_and_click_do_nothing(slack: SlackHarness) -> None:
    answer = await slack.bot.ask(IncomingQuestion(ROADMAP))
    body = "command=%2Fpolicy&text=hello&user_id=U1&response_url=x"
    assert (
        await slack.post(body, "application/x-www-form-urlencoded", secret="x")
    ).status_code == 401
    payload = {
        "type": "block_actions",
        "actions": [{"action_id": render.ACTION_ESCALATE, "value": str(answer.question_id)}],
    }
    assert (await slack.interaction(payload, secret="x")).status_code == 401
    await asyncio.sleep(0)
    assert slack.api.total_calls == 0
    assert slack.bot.open_questions() == []


async def test_a_retried_event_is_answered_once(slack: SlackHarness) -> None:
    first = await slack.event(mention(ROADMAP), event_id="Ev0RETRY")
    retry = await slack.event(mention(ROADMAP), event_id="Ev0RETRY", retry=1)
    assert first.status_code == retry.status_code == 200
    await slack.event(dm("can I tweet about our quarterly revenue?"))  # a different event
    await slack.api.wait_for("chat.postMessage", 2)
    posts = slack.api["chat.postMessage"]
    assert sorted(p["channel"] for p in posts) == ["C100", "D123"]
    assert len(slack.bot.storage.questions(status=None)) == 2


@pytest.mark.parametrize(
    "event",
    [
        dm("may I tweet?", user=BOT_USER),
        dm("may I tweet?", bot_id=BOT_ID, subtype="bot_message"),
        dm("may I tweet?", bot_id="B0OTHER"),
        dm("may I tweet?", subtype="message_changed"),
        dm("", subtype="message_deleted"),
        dm("has joined", subtype="channel_join"),
        dm("may I tweet?", channel_type="channel", channel="C100"),
        mention("may I tweet?", bot_id="B0OTHER"),
        mention("may I tweet?", subtype="message_changed"),
    ],
    ids=[
        "own",
        "own-bot",
        "other-bot",
        "edit",
        "delete",
        "join",
        "channel-chatter",
        "bot-mention",
        "edited-mention",
    ],
)
async def test_bots_edits_and_other_subtypes_are_ignored(
    slack: SlackHarness, event: dict[str, Any]
) -> None:
    response = await slack.event(event)
    assert response.status_code == 200
    await slack.event(dm(ROADMAP, ts="1700000099.000001"))  # a real question after it
    posts = await slack.api.wait_for("chat.postMessage")
    assert len(posts) == 1 and posts[0]["channel"] == "D123"
    assert [q.text for q in slack.bot.storage.questions(status=None)] == [ROADMAP]


async def test_direct_message_is_answered_in_the_dm(slack: SlackHarness) -> None:
    await slack.event(dm(ROADMAP))
    (post,) = await slack.api.wait_for("chat.postMessage")
    assert post["channel"] == "D123" and "thread_ts" not in post
    assert "3.3" in all_text(post["blocks"])


async def test_uncovered_question_says_so_and_goes_to_the_review_channel(
    settings: Settings,
) -> None:
    async with slack_server(settings, slack_review_channel="CREVIEW") as slack:
        await slack.event(
            dm("what time does the cafeteria open? <!channel> <https://x.example|bank>")
        )
        posts = await slack.api.wait_for("chat.postMessage", 2)
        by_channel = {p["channel"]: p for p in posts}
        assert "does not cover" in by_channel["D123"]["text"]
        review = all_text(by_channel["CREVIEW"]["blocks"])
        assert "&lt;!channel&gt;" in review and "<!channel>" not in review
        assert "&lt;https://x.example|bank&gt;" in review
        assert "U123" not in review  # askers stay pseudonymous unless POLICYBOT_SHOW_ASKERS


async def test_an_uncertain_answer_is_marked_rated_and_sent_to_the_review_channel(
    settings: Settings,
) -> None:
    async with slack_server(uncertain_for(settings), slack_review_channel="CREVIEW") as slack:
        await slack.event(dm(ROADMAP))
        posts = await slack.api.wait_for("chat.postMessage", 2)
        by_channel = {p["channel"]: p for p in posts}
        reply = by_channel["D123"]
        # Possibly not what was asked: said above the clauses, and in the notification text.
        assert reply["text"].startswith(messages.UNCERTAIN_MARK)
        mark, lead, *rest = reply["blocks"]
        assert mark["type"] == "context" and messages.UNCERTAIN_MARK in all_text([mark])
        assert "not sure the policy answers this" in all_text([lead])
        texts = cited_clause_texts(slack)
        assert texts and all(render.escape(t)[:80] in all_text(rest) for t in texts)
        # Rated like an answer; no "Ask the policy team": the team has the question already.
        assert action_ids(rest) == {render.ACTION_FEEDBACK}
        review = all_text(by_channel["CREVIEW"]["blocks"])
        assert "not sure the policy answers this question" in review and ROADMAP in review
        row = slack.bot.storage.questions(status=None)[0]
        assert (row.outcome, row.status) == ("uncertain", "open")
        url = slack.api.response_url("thanks")
        await slack.feedback(render.FEEDBACK_POSITIVE, row.id, channel="D123", response_url=url)
        (note,) = await slack.api.wait_for("response_url:thanks")
        assert messages.REACTION_NOTES["helpful"] in note["text"]
        assert slack.bot.storage.question(row.id).feedback == "helpful"


async def test_ack_comes_back_before_a_slow_answer(slack: SlackHarness) -> None:
    slow = GatedAnswerer()
    slack.bot.answerer = slow
    response = await slack.event(mention(ROADMAP))
    assert response.status_code == 200
    assert not slow.finished and slack.api["chat.postMessage"] == []
    slow.release()
    (post,) = await slack.api.wait_for("chat.postMessage")
    assert slow.finished and "3.3" in all_text(post["blocks"])


async def test_slow_answer_shows_thinking_then_replaces_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.replies.THINKING_DELAY", 0.0)
    slow = GatedAnswerer()
    async with slack_server(settings) as fresh:
        fresh.bot.answerer = slow
        await fresh.event(mention(ROADMAP))
        (placeholder,) = await fresh.api.wait_for("chat.postMessage")
        assert placeholder["text"] == messages.THINKING and not slow.finished
        assert placeholder["thread_ts"] == "1700000001.000100"
        slow.release()
        (update,) = await fresh.api.wait_for("chat.update")
        assert update["channel"] == "C100"
        assert update["ts"].startswith("1700000000.")
        assert "3.3" in all_text(update["blocks"])
        assert len(fresh.api["chat.postMessage"]) == 1


async def test_web_api_calls_share_one_connection_per_loop_that_closes_with_the_server(
    settings: Settings,
) -> None:
    async with slack_server(settings) as slack:
        await slack.event(dm(ROADMAP))
        await slack.api.wait_for("chat.postMessage")
        await slack.event(dm("can I tweet about our quarterly revenue?", ts="1700000003.0001"))
        await slack.api.wait_for("chat.postMessage", 2)
        await slack.event(dm("may I post a photo of the office?", ts="1700000004.0001"))
        await slack.api.wait_for("chat.postMessage", 3)
        # The first question goes through the server loop's bolt app (which learns who the
        # bot is), the later ones through the answering loop's: each app's auth.test and
        # answers over one kept-alive connection of its own session.
        assert len(slack.api["auth.test"]) == 2 and len(slack.api.connections) == 2
        sessions = [
            slack.web_app[SLACK_APP].client.session,
            slack.web_app[SLACK_ANSWERING].app.client.session,
        ]
        assert all(session is not None and not session.closed for session in sessions)
    assert all(session is not None and session.closed for session in sessions)
