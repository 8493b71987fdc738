"""Slack under stress: many askers through `/slack/events` at once, a Web API that rate-limits
(429 + Retry-After) and fails (5xx), and questions carrying Slack markup that must not ping or
mislead anyone when echoed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from tests.fakes.slack_harness import SlackHarness
from tests.reliability import percentiles, record
from tests.test_reliability_load import QUESTIONS

ASKERS = 30
QUESTIONS_EACH = 4


@pytest.fixture
def slack_options() -> dict[str, Any]:
    return {"slack_review_channel": "CREVIEW"}


async def test_many_slack_askers_at_once_each_get_one_answer_and_are_all_logged(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    acks: list[float] = []

    async def ask(asker: int, turn: int) -> None:
        started = time.perf_counter()
        response = await slack.dm(
            f"{QUESTIONS[(asker + turn) % len(QUESTIONS)]} (ticket {asker}-{turn})",
            user=f"U{asker:04d}",
        )
        acks.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200

    started = time.perf_counter()
    await asyncio.gather(*(ask(a, t) for a in range(ASKERS) for t in range(QUESTIONS_EACH)))
    total = ASKERS * QUESTIONS_EACH
    posts = await slack.api.wait_for("chat.postMessage", total)
    answers = [p for p in posts if p["channel"] != "CREVIEW"]
    while len(answers) < total:  # uncovered questions also go to the review channel
        posts = await slack.api.wait_for("chat.postMessage", len(posts) + 1)
        answers = [p for p in posts if p["channel"] != "CREVIEW"]
    elapsed = time.perf_counter() - started
    per_channel: dict[str, int] = {}
    for post in answers:
        per_channel[post["channel"]] = per_channel.get(post["channel"], 0) + 1
    assert per_channel == {f"D{a:04d}": QUESTIONS_EACH for a in range(ASKERS)}
    rows = slack.bot.storage.questions(status=None, limit=10 * total)
    assert len(rows) == total and len({r.text for r in rows}) == total
    assert not [r for r in caplog.records if "locked" in r.getMessage().lower()]
    record(
        "Load: Slack `/slack/events`",
        "pytest tests/test_reliability_slack.py -k many",
        requests=total,
        askers=ASKERS,
        answered_once=len(answers),
        logged=len(rows),
        database_locked=0,
        failures=total - len(answers),
        answers_per_second=round(total / elapsed, 1),
        **{f"ack_{k}": v for k, v in percentiles(acks).items()},
    )


async def test_rate_limits_and_server_errors_from_slack_are_retried(slack: SlackHarness) -> None:
    # The first answer meets a 429 asking for a wait, then a 503, then gets through.
    slack.api.failures["chat.postMessage"] += [(429, {"Retry-After": "0"}), (503, {})]
    await slack.dm("may I share our unreleased roadmap on LinkedIn?")
    posts = await slack.api.wait_for("chat.postMessage", 3)
    assert len(posts) == 3 and posts[0]["text"] == posts[2]["text"]  # the same message, resent
    assert len(slack.bot.storage.questions(status=None)) == 1
    record(
        "Faults: Slack Web API 429 (Retry-After) and 5xx",
        "pytest tests/test_reliability_slack.py -k rate_limits",
        faults_injected=2,
        retried=2,
        answers_lost=0,
        failures=0,
    )


MARKUP = "<!channel> <!here> <!everyone> <@U0BOSS> <#C0SECRET> <https://evil.example|the HR portal>"


def echoed_texts(call: dict[str, Any]) -> list[str]:
    """Every string Slack would render from a chat.postMessage call."""
    found = [str(call.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(call.get("blocks") or [])
    return found


@pytest.mark.parametrize(
    ("question", "messages"),
    [
        # Not covered: the answer, and the question echoed to the review channel.
        (f"{MARKUP} what time does the cafeteria open?", 2),
        (f"may I share our unreleased roadmap on LinkedIn? {MARKUP}", 1),
    ],
    ids=["uncovered", "covered"],
)
async def test_slack_markup_in_a_question_never_pings_or_links_when_echoed(
    slack: SlackHarness, question: str, messages: int
) -> None:
    await slack.dm(question)
    posts = await slack.api.wait_for("chat.postMessage", messages)
    texts = [t for call in posts for t in echoed_texts(call)]
    assert texts
    for dangerous in (
        "<!channel>",
        "<!here>",
        "<!everyone>",
        "<@U0BOSS>",
        "<#C0SECRET>",
        "<https://evil",
    ):
        assert not any(dangerous in t for t in texts), dangerous
    logged = slack.bot.storage.questions(status=None)[0].text
    assert "<!channel>" in logged  # the log keeps what was asked, for the policy team
    record(
        "Bad input: Slack markup (`<!channel>`, mentions, links) in questions",
        "pytest tests/test_reliability_slack.py -k markup",
        inputs_tried=1,
        messages_checked=len(posts),
        pings_or_links_echoed=0,
        failures=0,
    )
