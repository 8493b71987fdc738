"""Answers an employee can trust, over the real server: every reply on Slack says which of the
three outcomes it is, and every question the bot was unsure of or could not answer reaches the
policy team. The thresholds are cut at the thirds of the questions' own confidences, so each
outcome is exercised whatever retrieval's confidence for them becomes."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from adapters.slack import blocks as render
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from bot.store.database import Storage
from tests.fakes.slack_harness import action_ids, all_text, slack_server
from tests.reliability import percentiles, record

LABELED = Path(__file__).parent.parent / "eval" / "bundled-policy.jsonl"
QUESTIONS = 45


def labeled_questions() -> list[str]:
    lines = LABELED.read_text(encoding="utf-8").splitlines()
    step = max(len(lines) // QUESTIONS, 1)  # spread over the file's sections, not its first ones
    return [json.loads(line)["question"] for line in lines[::step][:QUESTIONS]]


def thirds(settings: Settings, questions: list[str]) -> Settings:
    bot = PolicyBot.create(settings, storage=Storage.memory())
    try:
        bot.ensure_policy()
        confidences = sorted(bot.retrieve(q).confidence for q in questions)
    finally:
        bot.storage.close()
    low, high = confidences[len(confidences) // 3], confidences[2 * len(confidences) // 3]
    return dataclasses.replace(settings, uncertain_confidence=low, min_confidence=high)


async def test_every_slack_reply_says_its_outcome_and_every_doubt_reaches_the_policy_team(
    settings: Settings,
) -> None:
    questions = labeled_questions()
    cut = thirds(settings, questions)
    async with slack_server(cut, slack_review_channel="CREVIEW") as slack:
        latencies: list[float] = []
        replies = []
        for n, question in enumerate(questions):
            started = time.perf_counter()
            await slack.dm(question, user=f"U{n:04d}")
            posts = await slack.api.wait_for("chat.postMessage", n + 1)
            answers = [p for p in posts if p["channel"] != "CREVIEW"]
            while len(answers) < n + 1:
                posts = await slack.api.wait_for("chat.postMessage", len(posts) + 1)
                answers = [p for p in posts if p["channel"] != "CREVIEW"]
            latencies.append((time.perf_counter() - started) * 1000)
            replies.append(answers[-1])
        rows = {r.text: r for r in slack.bot.storage.questions(status=None, limit=10 * QUESTIONS)}
        reviewed = await slack.api.wait_for(
            "chat.postMessage", len(questions) + sum(r.outcome != "answered" for r in rows.values())
        )
        referred = [all_text(p["blocks"]) for p in reviewed if p["channel"] == "CREVIEW"]

    counts = {"answered": 0, "uncertain": 0, "not_covered": 0}
    mislabeled = unreferred = 0
    for question, reply in zip(questions, replies, strict=True):
        row = rows[question]
        counts[row.outcome] += 1
        shown = all_text(reply["blocks"])
        buttons = action_ids(reply["blocks"])
        marked = messages.UNCERTAIN_MARK in shown and reply["text"].startswith(
            messages.UNCERTAIN_MARK
        )
        expected = {
            "answered": not marked and render.ACTION_ESCALATE in buttons and bool(row.citations),
            "uncertain": marked and bool(row.citations) and buttons == {render.ACTION_FEEDBACK},
            "not_covered": not marked and not row.citations and not buttons,
        }[row.outcome]
        mislabeled += not expected
        on_list = row.status == "open" and row.review_reason == row.outcome
        if row.outcome != "answered" and not (
            on_list and any(render.escape(question)[:60] in text for text in referred)
        ):
            unreferred += 1
    assert all(counts.values()), counts
    assert mislabeled == 0 and unreferred == 0
    record(
        "Data: three outcomes on Slack",
        "pytest tests/test_reliability_outcomes.py",
        questions=len(questions),
        answered=counts["answered"],
        uncertain=counts["uncertain"],
        not_covered=counts["not_covered"],
        replies_mislabeled=mislabeled,
        doubts_not_referred=unreferred,
        **{f"reply_{k}": v for k, v in percentiles(latencies).items()},
    )
