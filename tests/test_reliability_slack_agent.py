"""Faults and compatibility of Slack's agent surface, over the real server and the loopback fake
Slack Web API: a streamed answer that breaks at each step still ends as one complete, cited
message; a workspace without the agent view (or streaming) is answered as before."""

from __future__ import annotations

import time
from typing import Any

import pytest

from adapters.slack import blocks as render
from bot import messages
from bot.answering.grounded import SUMMARY_PREFIX
from bot.config import Settings
from tests.fakes.answerers import GatedAnswerer
from tests.fakes.openai_stub import OpenAIStub, Recorded, Reply, answer
from tests.fakes.slack_api import FakeSlackApi, fake_slack_api
from tests.fakes.slack_harness import action_ids, all_text, slack_server
from tests.reliability import percentiles, record

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
#: Where a stream can break, as Slack says it: no streaming in the workspace; the stream gone
#: (expired, or never taken) when appending or stopping it.
BREAKS: dict[str, tuple[str, str]] = {
    "start refused": ("chat.startStream", "unknown_method"),
    "append refused": ("chat.appendStream", "message_not_in_streaming_state"),
    "stop refused": ("chat.stopStream", "message_not_in_streaming_state"),
}


def quoting_the_clause(request: Recorded) -> Reply:
    """A model that answers with its first clause's words, over and over: a summary long
    enough to need several stream calls, and one the groundedness check accepts."""
    label, text = next(iter(request.clauses.items()))
    return answer("not_allowed", " ".join([text] * 3), [label])


def final_message(api: FakeSlackApi) -> tuple[str, list[dict[str, Any]]]:
    """What the thread shows at the end, as one message: the stream stopped whole, or the
    message that replaced or followed it."""
    if api["chat.update"]:
        update = api["chat.update"][-1]
        return update["text"], update["blocks"]
    stopped = [s for s in api.streams.values() if s["stopped"]]
    if stopped:
        return stopped[-1]["text"], stopped[-1]["blocks"]
    post = api["chat.postMessage"][-1]
    return post["text"], post["blocks"]


async def test_a_stream_broken_at_any_step_ends_as_one_complete_cited_message(
    settings: Settings, llm_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so that a summary the core keeps short still takes several appends.
    monkeypatch.setattr("adapters.slack.agent.STREAM_BATCH", 100)
    complete = lost = 0
    latencies: list[float] = []
    for method, error in BREAKS.values():
        llm_stub.script(quoting_the_clause)
        async with fake_slack_api() as api:
            api.overrides[method] = {"ok": False, "error": error}
            async with slack_server(
                settings, api=api, openai_base_url=llm_stub.url, llm_model="stub-model"
            ) as slack:
                started = time.perf_counter()
                await slack.mention(ROADMAP)
                await api.wait_for(method)
                ended = "chat.update" if method != "chat.startStream" else "chat.postMessage"
                await api.wait_for(ended)
                latencies.append((time.perf_counter() - started) * 1000)
                row = slack.bot.storage.questions(status=None)[0]
                clause_id = row.citations[0]["clause_id"]
                cited = slack.bot.storage.clauses_by_id([clause_id])[clause_id].clause.text
                text, blocks = final_message(api)
                shown = all_text(blocks)
                whole = (
                    row.answer_source == "llm"
                    and render.escape(cited)[:60] in shown
                    and SUMMARY_PREFIX in text
                    and action_ids(blocks) == {render.ACTION_FEEDBACK, render.ACTION_ESCALATE}
                )
                complete += whole
                lost += not whole
                if method == "chat.startStream":
                    # Nothing was streamed: the whole answer is posted in the asker's thread.
                    (post,) = api["chat.postMessage"]
                    assert post["thread_ts"] and api.streams == {}
                else:
                    # What was streamed is replaced by the whole answer, not left half-written.
                    (update,) = api["chat.update"]
                    assert update["ts"] in api.streams
                    assert api["chat.postMessage"] == []
    assert complete == len(BREAKS) and lost == 0
    record(
        "Faults: a streamed answer broken mid-way (Slack)",
        "pytest tests/test_reliability_slack_agent.py",
        breaks_tried=len(BREAKS),
        ended_complete_and_cited=complete,
        answers_lost=lost,
        **{f"to_final_message_{k}": v for k, v in percentiles(latencies).items()},
    )


async def test_a_workspace_without_the_agent_view_is_answered_as_before(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.replies.THINKING_DELAY", 0.0)
    questions = 3
    async with fake_slack_api() as api:
        assert not api.agent_view  # the assistant.threads.* methods answer not_allowed
        async with slack_server(settings, api=api) as slack:
            await slack.event(
                {"type": "app_home_opened", "user": "U123", "channel": "D123", "tab": "messages"}
            )
            await api.wait_for("assistant.threads.setSuggestedPrompts")
            for number in range(questions):
                slow = GatedAnswerer()
                slack.bot.answerer = slow
                await slack.dm(ROADMAP)
                await api.wait_for("chat.postMessage", number + 1)  # "Thinking…"
                slow.release()
                await api.wait_for("chat.update", number + 1)
            posts, updates = api["chat.postMessage"], api["chat.update"]
    placeholders = sum(p["text"] == messages.THINKING for p in posts)
    top_level = sum("thread_ts" not in p for p in posts)
    answered = sum("3.3" in all_text(u["blocks"]) for u in updates)
    # Refused once (on opening the DM), then not asked again for each question.
    assert api["assistant.threads.setStatus"] == [] and api["assistant.threads.setTitle"] == []
    assert placeholders == top_level == answered == questions
    record(
        "Compatibility: a Slack workspace without the agent view",
        "pytest tests/test_reliability_slack_agent.py",
        questions=questions,
        answered=answered,
        thinking_placeholders=placeholders,
        agent_calls_refused=len(api["assistant.threads.setSuggestedPrompts"]),
        agent_calls_after_refusal=len(api["assistant.threads.setStatus"]),
    )


def stream_call_text(call: dict[str, Any]) -> str:
    chunks = call.get("chunks") or []
    return str(call.get("markdown_text") or "") + "".join(str(c.get("text", "")) for c in chunks)


async def test_a_streamed_answer_keeps_to_slacks_limits(
    settings: Settings, llm_stub: OpenAIStub
) -> None:
    llm_stub.script(quoting_the_clause)
    async with slack_server(
        settings, openai_base_url=llm_stub.url, llm_model="stub-model"
    ) as slack:
        await slack.mention(ROADMAP)
        (stop,) = await slack.api.wait_for("chat.stopStream")
    api = slack.api
    calls = api["chat.startStream"] + api["chat.appendStream"] + [stop]
    sizes = [len(stream_call_text(c)) for c in calls]
    (stream,) = api.streams.values()
    # Batched: every call but the last carries at least a batch; none is over Slack's limit.
    assert max(sizes) <= render.MAX_STREAM_TEXT and len(stop["blocks"]) <= 50
    assert len(calls) <= 2 + len(stream["text"]) // 600
    record(
        "Limits: a streamed answer's calls (Slack)",
        "pytest tests/test_reliability_slack_agent.py",
        streamed_characters=len(stream["text"]),
        stream_calls=len(calls),
        largest_call_characters=max(sizes),
        closing_blocks=len(stop["blocks"]),
    )
