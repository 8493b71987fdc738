"""LLM answers streamed as they are written, over real servers on loopback: the Chat Completions
client against the streaming OpenAI stub (server-sent events, a stream broken mid-way), Teams'
streaming protocol against the Bot Framework connector stub, Slack's chat.*Stream against the
fake Slack Web API. Counts are asserted; latencies only recorded."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from adapters.server import build_app
from adapters.slack import blocks as render
from adapters.teams import citations, turns
from bot import messages
from bot.answering.grounded import SUMMARY_PREFIX
from bot.answering.llm import ChatClient, LLMConfig, LLMError
from bot.config import Settings
from bot.core import PolicyBot
from tests.fakes.bot_connector import Call, ConnectorStub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.openai_stub import OpenAIStub, Recorded, Reply, streamed, streamed_answer
from tests.fakes.slack_api import fake_slack_api
from tests.fakes.slack_harness import action_ids, all_text, slack_server
from tests.fakes.teams_activities import feedback_submit, message
from tests.fakes.teams_harness import local_teams, post
from tests.reliability import record

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
COMMAND = "pytest tests/test_reliability_streaming.py"
SECRET = "sk-stream-secret-0123456789"


def quoting_the_clause(**options: Any) -> Callable[[Recorded], Reply]:
    """A model that streams its first clause's words back as the summary: a reply the
    groundedness check accepts, long enough to arrive in many pieces."""

    def reply(request: Recorded) -> Reply:
        label, text = next(iter(request.clauses.items()))
        return streamed_answer("not_allowed", text, [label], **options)

    return reply


# -- the client --------------------------------------------------------------------------------
async def test_the_client_streams_the_reply_scrubbed_and_retries_only_before_the_first_text(
    llm_stub: OpenAIStub,
) -> None:
    config = LLMConfig(
        base_url=llm_stub.url, model="stub-model", api_key=SECRET, timeout=5, backoff=0.01
    )
    content = f"the key is {SECRET} and that is all there is to say about it"
    seen: list[str] = []
    async with httpx.AsyncClient() as http:
        client = ChatClient(config, http)
        # The secret cut across pieces of 4 characters: never shown, even in half.
        llm_stub.script(streamed(content, size=4))
        completion = await client.complete(
            [{"role": "user", "content": "hi"}], budget=5, on_text=seen.append
        )
        (request,) = llm_stub.requests
        assert request.body["stream"] is True
        assert request.headers["accept"] == "text/event-stream"
        assert completion.content == content.replace(SECRET, "[redacted]")
        assert completion.usage.prompt_tokens == 321
        assert len(seen) > 3 and all(SECRET[:8] not in text for text in seen)
        assert all(b.startswith(a) for a, b in itertools.pairwise(seen))
        # Broken after text reached the caller: no second request, an LLMError saying so.
        llm_stub.script(streamed(content, size=4, broken_after=8), streamed("unused"))
        before = len(llm_stub.requests)
        shown: list[str] = []
        with pytest.raises(LLMError) as broken:
            await client.complete(
                [{"role": "user", "content": "hi"}], budget=5, on_text=shown.append
            )
        assert shown and "stream broke" in broken.value.reason
        assert len(llm_stub.requests) == before + 1 and llm_stub.unused == 1
        # Broken before any text: retried like a refused connection, and answered.
        llm_stub.forget()
        llm_stub.script(streamed(content, size=4, broken_after=1), streamed("fine", size=2))
        retried = await client.complete(
            [{"role": "user", "content": "hi"}], budget=5, on_text=lambda _: None
        )
        assert retried.content == "fine" and retried.usage.attempts == 2
    record(
        "LLM streaming client (OpenAI stub, server-sent events)",
        COMMAND + " -k the_client_streams",
        texts_shown=len(seen),
        secret_fragments_shown=0,
        retries_after_first_text=0,
        retries_before_first_text=1,
    )


# -- Teams -------------------------------------------------------------------------------------
@pytest.fixture
async def teams_bot(
    bot_with: Callable[..., PolicyBot], settings: Settings
) -> AsyncIterator[Callable[[OpenAIStub], PolicyBot]]:
    made: list[PolicyBot] = []

    def make(llm: OpenAIStub) -> PolicyBot:
        bot = bot_with(
            teams_unauthenticated=True,
            openai_base_url=llm.url,
            llm_model="stub-model",
            openai_api_key="sk-t",
        )
        made.append(bot)
        return bot

    yield make
    for bot in made:
        await bot.aclose()


async def teams_stream(bot: PolicyBot, stub: ConnectorStub) -> tuple[list[Call], float]:
    """Every activity the bot sends for one question in a personal chat, until the final
    message, and how long that took (ms)."""
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        started = time.perf_counter()
        await post(base, message(ROADMAP, stub.url))
        async with asyncio.timeout(10):
            while not any(c.body.get("type") == "message" for c in stub.calls):
                await stub.received(len(stub.calls) + 1)
        return list(stub.calls), (time.perf_counter() - started) * 1000


def streaming_updates(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.stream and c.stream.get("streamType") == "streaming"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return local_teams(settings)


async def test_teams_streams_the_draft_then_ends_with_the_cited_final_message(
    teams_bot: Callable[[OpenAIStub], PolicyBot],
    llm_stub: OpenAIStub,
    stub: ConnectorStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(turns, "STREAM_INTERVAL", 0.0)  # every draft: the protocol itself
    llm_stub.script(quoting_the_clause(size=10, delay=0.01))
    calls, elapsed_ms = await teams_stream(teams_bot(llm_stub), stub)
    informative, *updates, final = calls
    assert informative.stream == {
        "type": "streaminfo",
        "streamType": "informative",
        "streamSequence": 1,
    }
    assert updates == streaming_updates(calls) and len(updates) >= 3
    sequences = [u.stream["streamSequence"] for u in updates if u.stream]
    assert sequences == list(range(2, 2 + len(updates)))
    assert all(u.stream and u.stream["streamId"] == informative.id for u in updates)
    assert all(u.body["type"] == "typing" and u.text.startswith(SUMMARY_PREFIX) for u in updates)
    # Whole text each time: each update is the one before, extended.
    texts = [u.text for u in updates]
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(texts))
    assert final.stream == {"type": "streaminfo", "streamType": "final", "streamId": informative.id}
    assert final.card is not None and final.text.endswith("[1]")
    (entity,) = [e for e in final.body["entities"] if e.get("type") == citations.MESSAGE_ENTITY]
    assert entity["additionalType"] == [citations.AI_GENERATED]
    assert final.body["channelData"]["feedbackLoop"] == {"type": "default"}
    assert stub.streams == {informative.id: (sequences[-1], True)}  # the stub took them all
    record(
        "Teams streaming: informative update, the draft as it is written, the final message",
        COMMAND + " -k teams_streams_the_draft",
        streaming_updates=len(updates),
        protocol_refusals=0,
        to_final_message_ms=round(elapsed_ms, 1),
    )


async def test_teams_streaming_updates_are_throttled(
    teams_bot: Callable[[OpenAIStub], PolicyBot],
    llm_stub: OpenAIStub,
    stub: ConnectorStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An interval no stream lasts: the first draft is sent, every later one skipped.
    monkeypatch.setattr(turns, "STREAM_INTERVAL", 3600.0)
    llm_stub.script(quoting_the_clause(size=10, delay=0.01))
    calls, _ = await teams_stream(teams_bot(llm_stub), stub)
    assert len(streaming_updates(calls)) == 1
    assert [c.body["type"] for c in calls] == ["typing", "typing", "message"]
    # Teams' own limit (one a second): counted, never timed.
    monkeypatch.setattr(turns, "STREAM_INTERVAL", 1.0)
    stub.calls.clear()
    llm_stub.script(quoting_the_clause(size=6, delay=0.05))
    calls, elapsed_ms = await teams_stream(teams_bot(llm_stub), stub)
    updates = streaming_updates(calls)
    assert calls[-1].body["type"] == "message" and len(updates) >= 1
    record(
        "Teams streaming throttle (at most one update per STREAM_INTERVAL)",
        COMMAND + " -k throttled",
        updates_with_an_hour_interval=1,
        updates_at_one_per_second=len(updates),
        stream_seconds=round(elapsed_ms / 1000, 1),
    )


async def test_a_teams_stream_broken_mid_way_ends_in_a_complete_cited_message(
    teams_bot: Callable[[OpenAIStub], PolicyBot],
    llm_stub: OpenAIStub,
    stub: ConnectorStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(turns, "STREAM_INTERVAL", 0.0)
    # The model's connection drops after a few pieces of the summary.
    llm_stub.script(quoting_the_clause(size=10, delay=0.01, broken_after=12))
    bot = teams_bot(llm_stub)
    calls, _ = await teams_stream(bot, stub)
    final = calls[-1]
    assert streaming_updates(calls), "the draft was shown before the break"
    assert final.stream and final.stream["streamType"] == "final"
    assert final.text.startswith(messages.DRAFT_REPLACED)
    assert final.card is not None and "[1]" in final.text  # cited, from the policy
    (row,) = bot.storage.questions(status=None)
    assert row.answer_source == "extractive"
    assert any("stream broke" in note for note in row.notes)
    assert "the streamed draft was replaced" in row.notes
    record(
        "Faults: a Teams stream whose LLM breaks mid-way",
        COMMAND + " -k teams_stream_broken",
        drafts_shown=len(streaming_updates(calls)),
        ended_complete_and_cited=1,
        said_replaced=1,
    )


# -- Slack -------------------------------------------------------------------------------------
async def test_slack_streams_the_draft_into_the_thread_and_stops_with_the_blocks(
    settings: Settings, llm_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.slack.agent.STREAM_INTERVAL", 0.0)
    llm_stub.script(quoting_the_clause(size=10, delay=0.01))
    async with (
        fake_slack_api() as api,
        slack_server(
            settings, api=api, openai_base_url=llm_stub.url, llm_model="stub-model"
        ) as slack,
    ):
        started = time.perf_counter()
        await slack.mention(ROADMAP)
        (stop,) = await api.wait_for("chat.stopStream")
        elapsed_ms = (time.perf_counter() - started) * 1000
        row = slack.bot.storage.questions(status=None)[0]
    (_start,) = api["chat.startStream"]
    appends = api["chat.appendStream"]
    assert len(appends) >= 2  # the draft grew in the thread before the answer was done
    (stream,) = api.streams.values()
    assert stream["stopped"] and stream["text"].startswith(render.markdown_escape(SUMMARY_PREFIX))
    assert row.answer_source == "llm" and row.answer_text
    assert render.markdown_escape(row.answer_text) in stream["text"]
    assert action_ids(stream["blocks"]) == {render.ACTION_FEEDBACK, render.ACTION_ESCALATE}
    assert api["chat.update"] == [] and api["chat.postMessage"] == []
    record(
        "Slack streaming: the draft into the thread as it is written, stopped with the blocks",
        COMMAND + " -k slack_streams_the_draft",
        stream_starts=1,
        appends=len(appends),
        stops=1,
        to_stop_ms=round(elapsed_ms, 1),
        **{"stop_blocks": len(stop.get("blocks") or [])},
    )


async def test_a_slack_stream_whose_llm_breaks_is_replaced_by_the_whole_cited_answer(
    settings: Settings, llm_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.slack.agent.STREAM_INTERVAL", 0.0)
    llm_stub.script(quoting_the_clause(size=10, delay=0.01, broken_after=12))
    async with (
        fake_slack_api() as api,
        slack_server(
            settings, api=api, openai_base_url=llm_stub.url, llm_model="stub-model"
        ) as slack,
    ):
        await slack.mention(ROADMAP)
        (update,) = await api.wait_for("chat.update")
        row = slack.bot.storage.questions(status=None)[0]
    (stream,) = api.streams.values()
    assert stream["stopped"] and update["ts"] in api.streams  # no stream left half-written
    assert update["text"].startswith(messages.DRAFT_REPLACED[:40])
    assert messages.DRAFT_REPLACED[:40] in all_text(update["blocks"])
    clause_id = row.citations[0]["clause_id"]
    assert str(clause_id) and row.answer_source == "extractive"
    assert render.ACTION_FEEDBACK in action_ids(update["blocks"])
    assert api["chat.postMessage"] == []
    record(
        "Faults: a Slack stream whose LLM breaks mid-way",
        COMMAND + " -k slack_stream_whose_llm_breaks",
        appends_before_the_break=len(api["chat.appendStream"]),
        replaced_whole=1,
        left_half_written=0,
    )


# -- Teams' answer messages, kept in the database ----------------------------------------------
async def test_teams_feedback_after_a_restart_reaches_the_question_its_message_answered(
    settings: Settings, database_location: str, engine: str, stub: ConnectorStub
) -> None:
    configured = (
        replace(settings, db_path=database_location)
        if engine == "sqlite"
        else replace(settings, database_url=database_location)
    )

    def started() -> PolicyBot:
        bot = PolicyBot.create(configured)
        bot.ensure_policy()
        return bot

    first = started()
    try:
        async with serving(build_app(first, host=LOOPBACK)) as base:
            await post(base, message(ROADMAP, stub.url))
            (answer_call,) = await stub.received(1)
    finally:
        await first.aclose()
        first.storage.close()
    # Another process (a restart, or another replica) takes Teams' feedback on that message.
    second = started()
    try:
        async with serving(build_app(second, host=LOOPBACK)) as base:
            status, _ = await post(
                base, feedback_submit("dislike", answer_call.id, stub.url, comment="too vague")
            )
            _, told = await stub.received(2)
        (row,) = second.storage.questions(status=None)
    finally:
        await second.aclose()
        second.storage.close()
    assert status == 200 and told.text != messages.STALE_QUESTION
    assert row.feedback == "not_helpful" and row.feedback_comment == "too vague"
    record(
        "Teams feedback after a restart (answer message -> question in the database)",
        COMMAND + " -k after_a_restart",
        engine=engine,
        restarts=1,
        feedback_mapped=1,
    )
