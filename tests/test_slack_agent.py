"""Slack's agent surface over the real server and the loopback fake Slack Web API: suggested
prompts when the DM opens, the thread's status and title, LLM answers streamed, and Slack's
feedback buttons mapped to the core's reactions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.slack import blocks as render
from bot import messages
from bot.config import Settings
from bot.models import IncomingQuestion
from tests.fakes.answerers import GatedAnswerer
from tests.fakes.openai_stub import OpenAIStub, Script, answer
from tests.fakes.slack_api import TEAM, fake_slack_api
from tests.fakes.slack_harness import SlackHarness, action_ids, all_text, slack_server

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
SUMMARY = "No. Unreleased plans stay confidential until announced <!channel> [here](x)."


def cite_first(verdict: str, text: str) -> Script:
    return lambda request: answer(verdict, text, [next(iter(request.clauses))])


@pytest.fixture
async def agent_slack(settings: Settings) -> AsyncIterator[SlackHarness]:
    """A workspace with the agent view."""
    async with fake_slack_api() as api:
        api.agent_view = True
        async with slack_server(settings, api=api, slack_review_channel="CREVIEW") as harness:
            yield harness


@pytest.fixture
async def llm_slack(settings: Settings, llm_stub: OpenAIStub) -> AsyncIterator[SlackHarness]:
    """An agent-view workspace whose answers come from the stub LLM."""
    llm_stub.script(cite_first("not_allowed", SUMMARY))
    async with fake_slack_api() as api:
        api.agent_view = True
        async with slack_server(
            settings, api=api, openai_base_url=llm_stub.url, llm_model="stub-model"
        ) as harness:
            yield harness


async def open_messages_tab(slack: SlackHarness, user: str = "U123") -> None:
    channel = "D" + user.lstrip("U")
    await slack.event(
        {"type": "app_home_opened", "user": user, "channel": channel, "tab": "messages"}
    )


def streamed(slack: SlackHarness) -> dict[str, Any]:
    (stream,) = slack.api.streams.values()
    return stream


async def test_opening_the_dm_greets_with_the_policy_and_prompts_from_its_sections(
    agent_slack: SlackHarness,
) -> None:
    await open_messages_tab(agent_slack)
    (call,) = await agent_slack.api.wait_for("assistant.threads.setSuggestedPrompts")
    assert call["channel_id"] == "D123" and "thread_ts" not in call
    (active,) = agent_slack.bot.active_versions()
    assert call["title"] == messages.greeting([active.title])
    assert active.title and active.title in call["title"]
    prompts = call["prompts"]
    offered = agent_slack.bot.example_questions(4)
    assert [p["message"] for p in prompts] == offered and 2 <= len(prompts) <= 4
    assert prompts[0]["message"] == agent_slack.bot.example_question()
    assert len(set(offered)) == len(offered)  # different sections
    assert agent_slack.api["views.publish"] == []  # the Home tab is not redrawn for it


async def test_a_dm_question_shows_a_status_and_a_title_then_the_answer_in_its_thread(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However slow the answer, the status stands in for the "Thinking…" placeholder.
    monkeypatch.setattr("adapters.replies.THINKING_DELAY", 0.0)
    async with fake_slack_api() as api:
        api.agent_view = True
        async with slack_server(settings, api=api) as slack:
            slow = GatedAnswerer()
            slack.bot.answerer = slow
            await slack.dm(ROADMAP)
            (status,) = await api.wait_for("assistant.threads.setStatus")
            (title,) = await api.wait_for("assistant.threads.setTitle")
            await slow.started.wait()
            slow.release()
            (post,) = await api.wait_for("chat.postMessage")
    assert status["channel_id"] == "D123" and status["status"] == messages.LOOKING
    assert title["thread_ts"] == status["thread_ts"] and title["title"] == ROADMAP
    assert post["channel"] == "D123" and post["thread_ts"] == status["thread_ts"]
    assert post["text"] != messages.THINKING and "3.3" in all_text(post["blocks"])
    assert api["chat.update"] == []


async def test_a_question_later_in_the_thread_keeps_its_title(agent_slack: SlackHarness) -> None:
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": "D123",
        "user": "U123",
        "text": ROADMAP,
        "ts": "1700000200.000002",
        "thread_ts": "1700000200.000001",
    }
    await agent_slack.event(event)
    (post,) = await agent_slack.api.wait_for("chat.postMessage")
    assert post["thread_ts"] == "1700000200.000001"
    assert agent_slack.api["assistant.threads.setTitle"] == []
    # Answered within the thinking delay: no status was worth a call.
    assert agent_slack.api["assistant.threads.setStatus"] == []


async def test_a_quick_answer_names_the_thread_and_needs_no_status(
    agent_slack: SlackHarness,
) -> None:
    await agent_slack.dm(ROADMAP)
    (post,) = await agent_slack.api.wait_for("chat.postMessage")
    (title,) = agent_slack.api["assistant.threads.setTitle"]
    assert title["title"] == ROADMAP and post["thread_ts"] == title["thread_ts"]
    assert "3.3" in all_text(post["blocks"])
    assert agent_slack.api["assistant.threads.setStatus"] == []
    assert agent_slack.api["chat.update"] == []


async def test_an_llm_answer_is_streamed_into_the_thread_ending_with_citations_and_feedback(
    llm_slack: SlackHarness,
) -> None:
    thread = await llm_slack.mention(ROADMAP)
    (stop,) = await llm_slack.api.wait_for("chat.stopStream")
    (start,) = llm_slack.api["chat.startStream"]
    assert start["channel"] == "C100" and start["thread_ts"] == thread
    assert start["recipient_user_id"] == "U123" and start["recipient_team_id"] == TEAM
    stream = streamed(llm_slack)
    assert stream["stopped"] and stop["ts"] in llm_slack.api.streams
    text = stream["text"]
    assert "Unreleased plans stay confidential" in text
    # Escaped as mrkdwn is: no broadcast, no link from the model's words.
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "[here](x)" not in text
    row = llm_slack.bot.storage.questions(status=None)[0]
    assert row.answer_source == "llm"
    clause_id = row.citations[0]["clause_id"]
    cited = llm_slack.bot.storage.clauses_by_id([clause_id])[clause_id].clause.text
    shown = all_text(stop["blocks"])
    assert render.escape(cited)[:60] in shown
    assert action_ids(stop["blocks"]) == {render.ACTION_FEEDBACK, render.ACTION_ESCALATE}
    assert f"policybot_feedback_{row.id}" in shown
    assert llm_slack.api["chat.postMessage"] == [] and llm_slack.api["chat.update"] == []


async def test_an_extractive_answer_is_posted_whole(agent_slack: SlackHarness) -> None:
    await agent_slack.mention(ROADMAP)
    (post,) = await agent_slack.api.wait_for("chat.postMessage")
    assert "3.3" in all_text(post["blocks"])
    assert agent_slack.api["chat.startStream"] == []


async def test_the_feedback_buttons_map_to_the_cores_reactions(agent_slack: SlackHarness) -> None:
    good = await agent_slack.bot.ask(IncomingQuestion(ROADMAP, platform="slack", asker="U123"))
    bad = await agent_slack.bot.ask(IncomingQuestion(ROADMAP, platform="slack", asker="U123"))
    url = agent_slack.api.response_url("thanks")
    await agent_slack.feedback(render.FEEDBACK_POSITIVE, good.question_id, response_url=url)
    (note,) = await agent_slack.api.wait_for("response_url:thanks")
    assert messages.REACTION_NOTES["helpful"] in note["text"]
    assert agent_slack.bot.storage.question(good.question_id or 0).feedback == "helpful"
    await agent_slack.feedback(render.FEEDBACK_NEGATIVE, bad.question_id, channel="D123")
    (review,) = await agent_slack.api.wait_for("chat.postMessage")
    assert review["channel"] == "CREVIEW" and "roadmap" in all_text(review["blocks"])
    assert agent_slack.bot.storage.question(bad.question_id or 0).feedback == "not_helpful"


async def test_a_garbled_feedback_button_changes_nothing(agent_slack: SlackHarness) -> None:
    asked = await agent_slack.bot.ask(IncomingQuestion(ROADMAP, platform="slack", asker="U123"))
    url = agent_slack.api.response_url("stale")
    await agent_slack.feedback(
        render.FEEDBACK_POSITIVE, None, response_url=url, block_id="policybot_feedback_x1"
    )
    (note,) = await agent_slack.api.wait_for("response_url:stale")
    assert messages.STALE_QUESTION in note["text"]
    response = await agent_slack.feedback("sideways", asked.question_id, response_url=url)
    assert response.status_code == 200
    assert agent_slack.bot.storage.question(asked.question_id or 0).feedback in ("", None)


async def test_the_fake_refuses_malformed_agent_and_stream_calls(
    agent_slack: SlackHarness,
) -> None:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    client = AsyncWebClient(token="xoxb-test", base_url=agent_slack.api.url)
    with pytest.raises(SlackApiError) as missing:
        await client.api_call(
            "assistant.threads.setStatus", json={"channel_id": "D1", "status": "x"}
        )
    assert missing.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as no_thread:
        await client.api_call("chat.startStream", json={"channel": "D1"})
    assert no_thread.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as not_streaming:
        await client.chat_appendStream(channel="D1", ts="1.2", markdown_text="x")
    assert not_streaming.value.response["error"] == "message_not_in_streaming_state"
    with pytest.raises(SlackApiError) as too_long:
        await client.chat_startStream(channel="D1", thread_ts="1.1", markdown_text="x" * 12001)
    assert too_long.value.response["error"] == "msg_too_long"


async def test_what_the_user_is_viewing_is_acknowledged_and_not_acted_on(
    agent_slack: SlackHarness,
) -> None:
    response = await agent_slack.event(
        {
            "type": "app_context_changed",
            "user": "U123",
            "context": {"channel_id": "C777", "team_id": TEAM},
            "event_ts": "1700000300.000001",
        }
    )
    assert response.status_code == 200
    # Nothing said or looked up (bolt asks auth.test who the bot is on its first request).
    assert set(agent_slack.api.calls) <= {"auth.test"}
