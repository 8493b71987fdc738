from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace

import pytest

from bot.core import PolicyBot
from bot.models import IncomingQuestion, QuestionError
from bot.notify import ReviewNotice
from tests.fakes.answerers import BrokenAnswerer
from tests.fakes.outbound import RecordingPoster

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"


async def test_answer_cites_the_right_section_and_is_logged(bot: PolicyBot) -> None:
    answer = await bot.ask(
        IncomingQuestion("may I share our unreleased roadmap on LinkedIn?", asker="U1")
    )
    assert answer.answered
    assert answer.citations[0].section == "3.3"
    assert (
        answer.citations[0].text
        in bot.storage.clauses_by_id([answer.citations[0].clause_id])[
            answer.citations[0].clause_id
        ].clause.text
    )
    row = bot.storage.question(answer.question_id or 0)
    assert row.status == "answered" and row.citations[0]["section"] == "3.3"
    assert row.policy_version == answer.policy_version != ""


async def test_uncovered_question_is_logged_open(bot: PolicyBot) -> None:
    answer = await bot.ask(IncomingQuestion("what time does the cafeteria open?"))
    assert not answer.answered and not answer.citations
    assert "policy team" in answer.lead
    assert [q.id for q in bot.open_questions()] == [answer.question_id]


async def test_a_question_the_bot_fails_on_is_still_logged_for_the_policy_team(
    bot: PolicyBot,
) -> None:
    bot.answerer = BrokenAnswerer()
    channel = RecordingPoster[ReviewNotice]()
    bot.review_posters["slack"] = channel
    with pytest.raises(RuntimeError, match="the answerer broke"):
        await bot.ask(
            IncomingQuestion("can I post photos from the warehouse?", platform="slack", asker="U1")
        )
    (notice,) = channel.posts
    assert (notice.reason, notice.question) == ("failed", "can I post photos from the warehouse?")
    (row,) = bot.open_questions()
    assert row.text == "can I post photos from the warehouse?"
    assert (row.status, row.review_reason, row.answer_source) == (
        "open",
        "failed",
        "failed",
    )
    assert row.notes == ["failed: RuntimeError: the answerer broke"]
    assert notice.question_id == row.id


async def test_a_failed_question_is_on_the_review_list_as_a_group(bot: PolicyBot) -> None:
    bot.answerer = BrokenAnswerer()
    with pytest.raises(RuntimeError):
        await bot.ask(IncomingQuestion("can I post photos from the warehouse?"))
    (group,) = bot.review.queue(status="open")
    (row,) = bot.open_questions()
    assert row.group_id == group.id and group.count == 1


async def test_bad_questions_are_refused_with_a_message_and_logged(bot: PolicyBot) -> None:
    with pytest.raises(QuestionError, match="type a question"):
        await bot.ask(IncomingQuestion("  \x00 \n"))
    with pytest.raises(QuestionError, match="characters long"):
        await bot.ask(IncomingQuestion("may I post " * 1000))
    refused = bot.storage.questions(status="refused")
    assert len(refused) == 1 and len(refused[0].text) <= bot.settings.max_question_chars


async def test_feedback_and_escalation_put_questions_on_the_review_list(bot: PolicyBot) -> None:
    first = await bot.ask(IncomingQuestion("can I tweet about our quarterly revenue?"))
    second = await bot.ask(IncomingQuestion("can I friend my boss on facebook?"))
    assert first.question_id and second.question_id
    bot.feedback(first.question_id, helpful=False)
    bot.escalate(second.question_id)
    reasons = {q.id: q.review_reason for q in bot.open_questions()}
    assert reasons == {first.question_id: "not_helpful", second.question_id: "ask_policy_team"}


async def test_reactions_decide_what_reaches_the_review_channel(bot: PolicyBot) -> None:
    channel = RecordingPoster[ReviewNotice]()
    bot.review_posters["slack"] = channel
    answer = await bot.ask(IncomingQuestion(ROADMAP, platform="slack", asker="U1"))
    assert answer.question_id is not None
    await bot.refer_unanswered(answer, IncomingQuestion(ROADMAP, platform="slack"))
    assert bot.react(answer.question_id, "helpful") is None
    assert bot.storage.question(answer.question_id).feedback == "helpful"
    for reaction in ("not_helpful", "ask_policy_team"):
        await bot.announce("slack", bot.react(answer.question_id, reaction), asker="U1")
        await bot.announce("teams", bot.react(answer.question_id, reaction))  # no channel there
    (group,) = bot.review.queue()
    assert [(n.question, n.reason, n.group_id, n.asker) for n in channel.posts] == [
        (ROADMAP, "not_helpful", group.id, ""),  # askers unnamed without SHOW_ASKERS
        (ROADMAP, "ask_policy_team", group.id, ""),
    ]
    with pytest.raises(KeyError):
        bot.react(999_999, "not_helpful")
    with pytest.raises(ValueError, match="unknown reaction"):
        bot.react(answer.question_id, "delete")


async def test_an_uncovered_question_is_announced_with_its_group(bot: PolicyBot) -> None:
    channel = RecordingPoster[ReviewNotice]()
    bot.review_posters["slack"] = channel
    bot.settings = replace(bot.settings, show_askers=True)
    incoming = IncomingQuestion("what time does the cafeteria open?", platform="slack", asker="U7")
    answer = await bot.ask(incoming)
    await bot.refer_unanswered(answer, incoming)
    (group,) = bot.review.queue()
    (notice,) = channel.posts
    assert notice == ReviewNotice(
        answer.question, answer.question_id, "not_covered", "U7", group.id
    )
    channel.fail = True  # a refusal is logged; the question stays on the list
    await bot.refer_unanswered(answer, incoming)
    assert [q.id for q in bot.open_questions()] == [answer.question_id]


async def test_a_burst_of_questions_lets_other_work_run_between_them(bot: PolicyBot) -> None:
    # Found by `python -m bench slack`: twenty questions arriving together used to run back
    # to back in one pass of the event loop, so the server acknowledged nothing (Slack retries
    # an event after 3 s) until all were answered.
    questions = [
        "may I share our unreleased roadmap on LinkedIn?",
        "what time does the cafeteria open?",
    ] * 10
    answered: list[int] = []

    async def ask(text: str, n: int) -> int:
        answer = await bot.ask(IncomingQuestion(text, platform="slack", asker=f"U{n}"))
        answered.append(n)
        return answer.question_id or 0

    asks = [asyncio.create_task(ask(q, n)) for n, q in enumerate(questions)]
    answered_before_ack: list[int] = []

    async def acknowledge() -> None:  # what an HTTP handler does: a moment of work, no I/O
        answered_before_ack.append(len(answered))

    await asyncio.create_task(acknowledge())
    ids = await asyncio.gather(*asks)
    assert answered_before_ack == [0]
    # Nothing lost or doubled on the way: every question answered once and logged once.
    assert sorted(answered) == list(range(len(questions)))
    assert len(set(ids)) == len(questions) and all(ids)
    assert len(bot.storage.questions(limit=100)) == len(questions)


def test_core_loads_no_platform_library() -> None:
    code = (
        "import sys, bot.core, bot.cli, bot.retrieval.lexical, bot.store.database;"
        "bad=[m for m in sys.modules if m.split('.')[0] in "
        "{'slack_bolt','slack_sdk','botbuilder','microsoft_agents','aiohttp','adapters'}];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
