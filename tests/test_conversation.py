"""Conversations that continue: the follow-up rule on the labeled tuning conversations, the
core reading a follow-up with the asker's own earlier turns (and nobody else's), the LLM's
condensed question over the loopback stub and the rule when the stub fails, the console, and
m014 on both engines."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from adapters.console import chat
from bench.multiturn import (
    FOLLOW_UP,
    TOPIC_SWITCH,
    Conversations,
    alone,
    by_rule,
    load_conversations,
    measure,
)
from bench.sets import ROOT
from bot.config import Settings
from bot.conversation import COMBINED, FollowUpRule, Turn
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.policies import PolicyLibrary
from bot.retrieval.lexical import LexicalRetriever
from bot.store.database import Storage
from tests.fakes.openai_stub import OpenAIStub, Recorded, Reply, answer, completion, error

FIRST = "can i say i work at brightwater in my instagram bio"
FOLLOW = "what about linkedin?"
SWITCH = "is it ok to film inside the sorting centre for tiktok"


def slack_turn(
    text: str, *, asker: str = "U1", thread: str = "D1/1700000000.000100"
) -> IncomingQuestion:
    return IncomingQuestion(
        text, platform="slack", asker=asker, conversation="D1", conversation_key=thread
    )


def bundled_conversations() -> Conversations:
    """The bundled policy's labeled conversations (a tuning part of eval/multiturn)."""
    storage = Storage.memory()
    library = PolicyLibrary(storage)
    versions = tuple(
        library.load_file(p).version.id for p in sorted((ROOT / "policies").glob("*.md"))
    )
    labeled = load_conversations(ROOT / "eval" / "multiturn" / "bundled.jsonl")
    return Conversations("bundled", storage, versions, labeled, LexicalRetriever(storage))


def test_the_rule_finds_the_tuning_follow_ups_that_asked_alone_miss() -> None:
    conversations = bundled_conversations()
    asked_alone = measure(conversations, alone)
    ruled = measure(conversations, by_rule(FollowUpRule()))
    assert asked_alone.turns[FOLLOW_UP] == ruled.turns[FOLLOW_UP] == 16
    # Alone, "and interns?" or "what about a visitor pass?" finds nothing of its topic.
    assert ruled.hits[FOLLOW_UP] >= asked_alone.hits[FOLLOW_UP] + 3
    # A new topic in the thread is not dragged back: it is asked as it stands.
    assert ruled.combined[TOPIC_SWITCH] == 0
    assert ruled.hits[TOPIC_SWITCH] == asked_alone.hits[TOPIC_SWITCH]


def test_a_short_follow_up_is_combined_and_a_new_topic_is_not() -> None:
    conversations = bundled_conversations()
    rule = FollowUpRule()
    before = [Turn("does the social media policy apply to me as a part-time warehouse worker")]
    reading, retrieval = rule.resolve("and interns?", before, conversations.retrieve)
    assert reading.how == COMBINED and reading.standalone.endswith("and interns?")
    assert any(s.stored.clause.section == "1.2" for s in retrieval.ranked[:3])
    reading, retrieval = rule.resolve(SWITCH, before, conversations.retrieve)
    assert not reading.continued and reading.standalone == SWITCH
    assert retrieval.ranked[0].stored.clause.section.startswith("9.")


async def test_a_follow_up_is_answered_in_context_and_logged_beside_what_was_asked(
    bot: PolicyBot,
) -> None:
    await bot.ask(slack_turn(FIRST))
    followed = await bot.ask(slack_turn(FOLLOW))
    assert followed.asked_as == f"{FIRST} — {FOLLOW}"
    assert followed.as_json()["asked_as"] == followed.asked_as
    assert followed.plain_text().startswith(f"Taking this as: {FIRST}")
    assert any(c.section.startswith("2.") for c in followed.citations)
    row = bot.storage.question(followed.question_id or 0)
    assert (row.text, row.standalone, row.asked_as) == (FOLLOW, followed.asked_as, row.asked_as)
    # The thread's Slack ids are not in the log: a keyed pseudonym of them is.
    assert row.conversation_key and row.conversation_key.startswith("conversation-")
    assert "D1" not in row.conversation_key and "1700000000" not in row.conversation_key
    switched = await bot.ask(slack_turn(SWITCH))
    assert switched.asked_as == "" and switched.as_json()["asked_as"] == SWITCH
    assert "Taking this as" not in switched.plain_text()
    assert bot.storage.question(switched.question_id or 0).standalone is None


async def test_only_the_askers_own_recent_turns_in_the_same_conversation_count(
    bot: PolicyBot,
) -> None:
    await bot.ask(slack_turn(FIRST, asker="U1"))
    # Someone else in the thread, the same asker in another thread: each asked alone.
    other_asker = await bot.ask(slack_turn(FOLLOW, asker="U2"))
    other_thread = await bot.ask(slack_turn(FOLLOW, thread="D1/1700000999.000100"))
    unkeyed = await bot.ask(IncomingQuestion(FOLLOW, platform="slack", asker="U1"))
    assert other_asker.asked_as == other_thread.asked_as == unkeyed.asked_as == ""
    # An hour later the conversation is over.
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    for row in bot.storage.questions(status=None):
        bot.storage.update_question(row.id, asked_at=earlier)
    assert (await bot.ask(slack_turn(FOLLOW))).asked_as == ""


async def test_the_window_setting_turns_it_off(bot_with: Callable[..., PolicyBot]) -> None:
    bot = bot_with(conversation_minutes=0)
    await bot.ask(slack_turn(FIRST))
    assert (await bot.ask(slack_turn(FOLLOW))).asked_as == ""


def test_the_window_is_read_and_checked_from_the_environment() -> None:
    assert Settings.from_env({"POLICYBOT_CONVERSATION_MINUTES": "5"}).conversation_minutes == 5
    try:
        Settings.from_env({"POLICYBOT_CONVERSATION_MINUTES": "-1"})
    except ValueError as refused:
        assert "POLICYBOT_CONVERSATION_MINUTES" in str(refused)
    else:
        raise AssertionError("a negative window was accepted")


def condensing(standalone: str) -> Callable[[Recorded], Reply]:
    def reply(request: Recorded) -> Reply:
        assert "standalone" in request.messages[0]["content"]
        return completion(json.dumps({"standalone": standalone}))

    return reply


def cite_first(request: Recorded) -> Reply:
    return answer("allowed", "Yes, if the title is accurate.", [next(iter(request.clauses))])


async def test_with_an_llm_the_conversation_is_condensed_and_retrieval_sees_it(
    bot_with: Callable[..., PolicyBot], llm_stub: OpenAIStub
) -> None:
    bot = bot_with(openai_base_url=llm_stub.url, llm_model="stub-model")
    standalone = "May I say I work at Brightwater on my LinkedIn profile?"
    llm_stub.script(cite_first, condensing(standalone), cite_first)
    await bot.ask(slack_turn(FIRST))
    followed = await bot.ask(slack_turn(FOLLOW))
    condense, answered = llm_stub.requests[1:]
    sent = json.loads(condense.messages[1]["content"])
    assert sent == {"earlier": [FIRST], "last": FOLLOW}
    # The answering call is asked the condensed question, not the bare follow-up.
    assert answered.data["question"] == standalone
    assert followed.asked_as == standalone
    assert bot.storage.question(followed.question_id or 0).standalone == standalone
    await bot.aclose()


async def test_when_the_llm_cannot_condense_the_rule_decides_and_the_log_says_why(
    bot_with: Callable[..., PolicyBot], llm_stub: OpenAIStub
) -> None:
    bot = bot_with(openai_base_url=llm_stub.url, llm_model="stub-model", llm_retries=0)
    llm_stub.script(cite_first, error(500, "condenser down"), cite_first)
    await bot.ask(slack_turn(FIRST))
    followed = await bot.ask(slack_turn(FOLLOW))
    assert followed.asked_as == f"{FIRST} — {FOLLOW}"
    row = bot.storage.question(followed.question_id or 0)
    assert row.standalone == followed.asked_as
    assert any(n.startswith("follow-up not condensed by the LLM") for n in row.notes)
    await bot.aclose()


async def test_the_console_reads_a_follow_up_with_the_sessions_questions(bot: PolicyBot) -> None:
    stdin = io.StringIO(f"{FIRST}\n{FOLLOW}\n!quit\n")
    stdout = io.StringIO()
    await chat(bot, stdin, stdout)
    out = stdout.getvalue()
    assert f"Taking this as: {FIRST} — {FOLLOW}" in out
    # A new chat is a new conversation.
    again = io.StringIO()
    await chat(bot, io.StringIO(f"{FOLLOW}\n!quit\n"), again)
    assert "Taking this as" not in again.getvalue()


def test_m014_keeps_the_standalone_question_and_finds_the_conversations_turns(
    new_storage: Callable[[], Storage],
) -> None:
    storage = new_storage()
    base = {"platform": "slack", "answered": 1, "confidence": 0.5, "status": "answered"}
    asker = storage.pseudonym("slack", "U1")
    other = storage.pseudonym("slack", "U2")
    key = storage.pseudonym("slack", "C1/1.0", kind="conversation")
    storage.log_question({**base, "text": FIRST, "asker": asker, "conversation_key": key})
    storage.log_question({**base, "text": "by another", "asker": other, "conversation_key": key})
    storage.log_question(
        {**base, "text": "too long", "asker": asker, "conversation_key": key, "status": "refused"}
    )
    storage.log_question(
        {**base, "text": FOLLOW, "standalone": f"{FIRST} — {FOLLOW}", "asker": asker,
         "conversation_key": key}
    )  # fmt: skip
    since = (datetime.now(UTC) - timedelta(minutes=30)).isoformat(timespec="seconds")
    assert storage.conversation_turns(key, asker, since, 3) == [
        (FIRST, None),
        (FOLLOW, f"{FIRST} — {FOLLOW}"),
    ]
    assert storage.conversation_turns(key, asker, since, 1) == [(FOLLOW, f"{FIRST} — {FOLLOW}")]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat(timespec="seconds")
    assert storage.conversation_turns(key, asker, later, 3) == []
    (row,) = [r for r in storage.questions(status=None) if r.text == FOLLOW]
    assert row.standalone == f"{FIRST} — {FOLLOW}" and row.conversation_key == key
    assert key != storage.pseudonym("slack", "C1/1.0") and key.startswith("conversation-")
