"""Teams' AI message features over HTTP, as the connector stub receives them: numbered
citations (the schema.org Message entity) on answers, the "AI generated" label on LLM answers
only."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.server import build_app
from adapters.teams import citations, turns
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from tests.fakes.bot_connector import Call, ConnectorStub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.openai_stub import OpenAIStub, answer
from tests.fakes.teams_activities import CHANNEL, feedback_submit, message
from tests.fakes.teams_harness import card_text, local_teams, post
from tests.reliability import percentiles, record

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
LLM_LEAD = "No. Unreleased plans are confidential until announced."
COMMAND = "pytest tests/test_teams_ai_messages.py"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return local_teams(settings)


@pytest.fixture
async def llm_bot(
    bot_with: Callable[..., PolicyBot], llm_stub: OpenAIStub
) -> AsyncIterator[PolicyBot]:
    """A bot configured with an LLM (the stub), which answers from the first clause."""
    bot = bot_with(openai_base_url=llm_stub.url, llm_model="stub-model", openai_api_key="sk-t")
    llm_stub.script(lambda request: answer("not_allowed", LLM_LEAD, ["C1"]))
    yield bot
    await bot.aclose()


async def ask(
    bot: PolicyBot, stub: ConnectorStub, text: str = ROADMAP, *, calls: int = 1, **options: Any
) -> Call:
    """The last of `calls` activities the bot sends for `text` (a stream sends two)."""
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message(text, stub.url, **options))
        sent = await stub.received(calls)
    assert len(sent) == calls
    return sent[-1]


def message_entities(call: Call) -> list[dict[str, Any]]:
    return [e for e in call.body.get("entities") or [] if e.get("type") == citations.MESSAGE_ENTITY]


async def test_an_extractive_answer_cites_its_clauses_natively_without_the_ai_label(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    reply = await ask(bot, stub)
    (logged,) = bot.storage.questions(status=None)
    assert logged.answer_source == "extractive" and logged.status == "answered"
    (entity,) = message_entities(reply)
    assert entity["@type"] == "Message" and entity["@context"] == "https://schema.org"
    # Quoted verbatim: no "AI generated" label, said outright (the SDK's default is the label).
    assert entity["additionalType"] == []
    claims = entity["citation"]
    cited = logged.citations
    assert [c["position"] for c in claims] == list(range(1, len(cited) + 1))
    assert len(claims) >= 1
    stored = bot.storage.clauses_by_id([c["clause_id"] for c in cited])
    for claim, logged_citation in zip(claims, cited, strict=True):
        clause = stored[logged_citation["clause_id"]].clause
        appearance = claim["appearance"]
        assert claim["@type"] == "Claim" and appearance["@type"] == "DigitalDocument"
        assert appearance["name"].startswith(clause.section)  # the section reference
        assert len(appearance["name"]) <= citations.MAX_NAME_CHARS
        assert len(appearance["abstract"]) <= citations.MAX_ABSTRACT_CHARS
        # The clause's own words, shortened only at the end.
        shown = appearance["abstract"].removesuffix("…")
        assert " ".join(clause.text.split()).startswith(shown)
    # The text carries Teams' markers, one per citation, after the lead.
    markers = " ".join(f"[{n}]" for n in range(1, len(claims) + 1))
    assert reply.text.endswith(markers)
    lead = logged.answer_text or ""
    assert lead and reply.text.startswith(lead.split(" ")[0])
    # The card numbers its quotes alike and no longer repeats the lead above them.
    assert reply.card is not None
    shown_card = card_text(reply.card)
    assert "[1] " in shown_card
    assert lead not in shown_card


async def test_an_llm_answer_carries_the_ai_label_and_its_citations(
    llm_bot: PolicyBot, stub: ConnectorStub, llm_stub: OpenAIStub
) -> None:
    reply = await ask(llm_bot, stub, calls=2)  # streamed in a personal chat
    (logged,) = llm_bot.storage.questions(status=None)
    assert logged.answer_source == "llm"
    (entity,) = message_entities(reply)
    assert entity["additionalType"] == [citations.AI_GENERATED]
    (claim,) = entity["citation"]
    (request,) = llm_stub.requests
    assert claim["appearance"]["abstract"].removesuffix("…") in " ".join(
        request.clauses["C1"].split()
    )
    assert LLM_LEAD in reply.text and reply.text.endswith("[1]")


async def test_a_not_covered_answer_has_no_citations_and_no_label(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    reply = await ask(bot, stub, "what is the cafeteria menu on tuesday?")
    (logged,) = bot.storage.questions(status=None)
    assert logged.status != "answered"
    assert message_entities(reply) == []
    assert "[1]" not in reply.text


def test_long_clause_text_and_names_are_cut_within_teams_limits() -> None:
    text = "Employees must not share " + "confidential roadmap details " * 20
    short = citations.shorten(text, citations.MAX_ABSTRACT_CHARS)
    assert len(short) <= citations.MAX_ABSTRACT_CHARS and short.endswith("…")
    assert not short.removesuffix("…").endswith(" ")
    assert citations.shorten("short", 160) == "short"


# -- Teams' feedback loop ------------------------------------------------------------------------
SECRET = "xoxb-feedback-secret-token-0000"


@pytest.fixture
def feedback_bot(bot_with: Callable[..., PolicyBot]) -> PolicyBot:
    return bot_with(slack_bot_token=SECRET)


async def test_an_answer_offers_teams_feedback_and_a_not_covered_reply_does_not(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message(ROADMAP, stub.url))
        await post(base, message("what is the cafeteria menu on tuesday?", stub.url))
        answered, not_covered = await stub.received(2)
    assert answered.body["channelData"]["feedbackLoop"] == {"type": "default"}
    assert answered.body["channelData"]["feedbackLoopEnabled"] is True
    assert "feedbackLoop" not in (not_covered.body.get("channelData") or {})


async def test_teams_feedback_is_the_cores_rating_with_the_comment_kept(
    feedback_bot: PolicyBot, stub: ConnectorStub
) -> None:
    bot = feedback_bot
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message(ROADMAP, stub.url))
        (answer_message,) = await stub.received(1)
        comment = f"The clause is about press releases, not LinkedIn. token {SECRET}"
        status, body = await post(
            base, feedback_submit("dislike", answer_message.id, stub.url, comment=comment)
        )
        assert status == 200 and json.loads(body) == {}
        (_, told) = await stub.received(2)
    (row,) = bot.storage.questions(status=None)
    assert row.feedback == "not_helpful" and row.status == "open"
    assert row.review_reason == "not_helpful"
    assert row.feedback_comment is not None
    assert row.feedback_comment.startswith("The clause is about press releases")
    assert SECRET not in row.feedback_comment  # scrubbed like the rest of the row
    assert told.text == messages.REACTION_NOTES["not_helpful"]
    record(
        "Teams feedback loop: a comment quoting a configured secret",
        COMMAND + " -k comment_kept",
        comments_sent=1,
        comments_kept=1,
        secrets_stored=int(SECRET in row.feedback_comment),
    )


async def test_teams_feedback_like_is_helpful_and_a_later_comment_is_kept(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message(ROADMAP, stub.url))
        (answer_message,) = await stub.received(1)
        status, _ = await post(base, feedback_submit("like", answer_message.id, stub.url))
        assert status == 200
        # The same rating again, now with a comment: the comment is not lost.
        await post(base, feedback_submit("like", answer_message.id, stub.url, comment="Clear."))
        await stub.received(3)
    (row,) = bot.storage.questions(status=None)
    assert row.feedback == "helpful" and row.status == "answered"
    assert row.feedback_comment == "Clear."


async def test_feedback_on_an_unknown_message_or_malformed_is_refused_cleanly(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message(ROADMAP, stub.url))
        await stub.received(1)
        status, _ = await post(base, feedback_submit("dislike", "no-such-message", stub.url))
        assert status == 200
        (_, told) = await stub.received(2)
        assert told.text == messages.STALE_QUESTION
        status, body = await post(
            base, feedback_submit("dislike", "activity-1", stub.url, action_name="other")
        )
        assert status == 400 and "feedback" in body
        status, _ = await post(base, feedback_submit("meh", "activity-1", stub.url))
        assert status == 400
    (row,) = bot.storage.questions(status=None)
    assert not row.feedback and row.status == "answered"
    record(
        "Teams feedback loop: feedback on an unknown message, a foreign action, a bad reaction",
        COMMAND + " -k malformed",
        invokes_sent=3,
        refused_400=2,
        told_question_gone=1,
        ratings_recorded=0,
        server_errors=0,
    )


# -- streaming in personal chat ------------------------------------------------------------------
async def test_an_llm_answer_in_a_personal_chat_is_streamed_then_finalized(
    llm_bot: PolicyBot, stub: ConnectorStub
) -> None:
    async with serving(build_app(llm_bot, host=LOOPBACK)) as base:
        started = time.perf_counter()
        posting = asyncio.ensure_future(post(base, message(ROADMAP, stub.url)))
        (informative,) = await stub.received(1)
        informative_ms = (time.perf_counter() - started) * 1000
        informative, final = await stub.received(2)
        final_ms = (time.perf_counter() - started) * 1000
        await posting
        assert informative.body["type"] == "typing"
        assert informative.text == turns.LOOKING_IN_POLICY
        assert informative.stream == {
            "type": "streaminfo",
            "streamType": "informative",
            "streamSequence": 1,
        }
        assert final.body["type"] == "message"
        assert final.stream == {
            "type": "streaminfo",
            "streamType": "final",
            "streamId": informative.id,
        }
        assert stub.streams == {informative.id: (1, True)}  # the stub's protocol was kept
        # The final message is the whole answer: card, citations, AI label, feedback loop.
        assert final.card is not None and final.text.endswith("[1]")
        (entity,) = message_entities(final)
        assert entity["additionalType"] == [citations.AI_GENERATED]
        assert final.body["channelData"]["feedbackLoop"] == {"type": "default"}
        # Teams' feedback under the streamed message names the stream: it reaches the question.
        status, _ = await post(base, feedback_submit("dislike", informative.id, stub.url))
        assert status == 200
        await stub.received(3)
    (row,) = llm_bot.storage.questions(status=None)
    assert row.feedback == "not_helpful"
    record(
        "Teams streaming in a personal chat (LLM stub): informative update, then the final message",
        COMMAND + " -k streamed_then_finalized",
        streams=1,
        activities=2,
        protocol_refusals=0,
        informative_after_ms=round(informative_ms, 1),
        final_after_ms=round(final_ms, 1),
    )


async def test_an_llm_answer_in_a_channel_is_one_message(
    llm_bot: PolicyBot, stub: ConnectorStub
) -> None:
    reply = await ask(llm_bot, stub, conversation=CHANNEL, mention_bot=True)
    assert reply.stream is None and reply.body["type"] == "message"
    assert stub.streams == {}


async def test_where_teams_refuses_the_stream_the_answer_is_one_plain_message(
    llm_bot: PolicyBot, stub: ConnectorStub
) -> None:
    stub.refuse_streaming = True
    async with serving(build_app(llm_bot, host=LOOPBACK)) as base:
        started = time.perf_counter()
        status, _ = await post(base, message(ROADMAP, stub.url))
        refused, answered = await stub.received(2)
        elapsed_ms = (time.perf_counter() - started) * 1000
    assert refused.stream is not None  # tried, and refused with 403
    assert answered.stream is None and answered.body["type"] == "message"
    assert answered.card is not None and LLM_LEAD in answered.text
    (row,) = llm_bot.storage.questions(status=None)
    assert row.answer_source == "llm"
    record(
        "Teams streaming refused (403, as in a channel): the answer as one message",
        COMMAND + " -k refuses_the_stream",
        streams_refused=1,
        answers_delivered=1,
        http_status=status,
        **{f"answer_{k}": v for k, v in percentiles([elapsed_ms]).items() if k == "max_ms"},
    )


async def test_without_an_llm_a_personal_chat_answer_is_not_streamed(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    reply = await ask(bot, stub)
    assert reply.stream is None and stub.streams == {}
