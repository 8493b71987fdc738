"""Slack deliveries answered once and acknowledged questions never lost.

Every kind of Slack delivery replayed byte for byte (same signature, within the 5 minutes it is
valid) is acted on once; a question acknowledged to Slack is kept before the acknowledgement,
so a `policybot serve` killed with SIGKILL in the middle of a burst answers, once restarted,
every question it acknowledged, once, saying the answer is late, and logs each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack import blocks as render
from bench import slack_load
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.notify import LateReply
from bot.received import CHECK, LATE_AFTER
from bot.store.database import REPLIED
from tests.fakes.slack_api import GUARD, FakeSlackApi, fake_slack_api
from tests.fakes.slack_harness import SlackHarness, slack_server
from tests.reliability import percentiles, record
from tests.test_slack_http import ROADMAP, dm
from tests.test_slack_review import ANSWER, TEAM_MEMBER, ask_about_dogs

TWEET = "can I tweet about our quarterly revenue?"
PHOTOS = "can I post pictures from the team offsite on instagram?"
DRAFT = "Thrilled to share our unreleased roadmap and quarterly revenue on LinkedIn today!"
REPLAYS = "Slack: replayed deliveries acted on once"
REPLAY_COMMAND = "pytest tests/test_reliability_durable.py -k replayed"


@pytest.fixture
def slack_options() -> dict[str, Any]:
    return {"slack_review_channel": "CREVIEW", "slack_policy_team": (TEAM_MEMBER,)}


async def listeners_done() -> None:
    """Until no bolt listener runs (bolt runs each one, after the acknowledgement, in a task
    of this name): whatever a delivery was going to do has been done."""

    def running() -> bool:
        return any(
            getattr(task.get_coro(), "__qualname__", "").endswith("run_ack_function_asynchronously")
            for task in asyncio.all_tasks()
            if not task.done()
        )

    deadline = time.monotonic() + GUARD
    while running():
        assert time.monotonic() < deadline, "a listener did not finish"
        await asyncio.sleep(0.01)


def answers(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages that are not the "Thinking…" placeholder."""
    return [c for c in calls if not str(c.get("text", "")).startswith("Thinking")]


async def replayed(slack: SlackHarness) -> None:
    """Replay the last request exactly; Slack's acknowledgement comes back, and nothing else."""
    again = await slack.replay()
    assert again.status_code == 200 and again.text == ""
    await listeners_done()


def logged_texts(slack: SlackHarness) -> Counter[str]:
    return Counter(str(q.text) for q in slack.bot.storage.questions(status=None))


async def test_a_replayed_slash_command_is_answered_and_logged_once(slack: SlackHarness) -> None:
    first = await slack.command(ROADMAP)
    assert first.status_code == 200
    await replayed(slack)
    assert len(answers(slack.api["response_url:command"])) == 1
    assert logged_texts(slack) == {ROADMAP: 1}
    record(REPLAYS, REPLAY_COMMAND, replays=1, acted_on_twice=0)


async def test_a_replayed_not_helpful_click_reaches_the_review_channel_once(
    slack: SlackHarness,
) -> None:
    await slack.dm(ROADMAP)
    await slack.api.wait_for("chat.postMessage")
    (question,) = slack.bot.storage.questions(status=None)
    note = slack.api.response_url("click")
    await slack.click(render.ACTION_NOT_HELPFUL, str(question.id), response_url=note)
    await replayed(slack)
    to_review = [p for p in slack.api["chat.postMessage"] if p["channel"] == "CREVIEW"]
    assert len(to_review) == 1 and len(slack.api["response_url:click"]) == 1
    assert logged_texts(slack) == {ROADMAP: 1}
    record(REPLAYS, REPLAY_COMMAND, replays=1, acted_on_twice=0)


async def test_a_replayed_message_shortcut_is_checked_once(slack: SlackHarness) -> None:
    await slack.shortcut(DRAFT)
    await replayed(slack)
    assert len(slack.api["response_url:shortcut"]) == 1
    assert logged_texts(slack) == {}  # a draft is never logged
    record(REPLAYS, REPLAY_COMMAND, replays=1, acted_on_twice=0)


async def test_a_replayed_view_submission_answers_the_group_once(slack: SlackHarness) -> None:
    group_id, _ = await ask_about_dogs(slack)
    await slack.click(
        render.ACTION_ANSWER_GROUP, str(group_id), user=TEAM_MEMBER, channel="CREVIEW"
    )
    (opened,) = await slack.api.wait_for("views.open")
    values = {render.ANSWER_BLOCK: {render.ANSWER_INPUT: {"value": ANSWER}}}
    submitted = await slack.submit_view(opened["view"], values, user=TEAM_MEMBER)
    assert submitted.status_code == 200
    await listeners_done()
    answered_at = slack.bot.review.group(group_id).answered_at
    await replayed(slack)
    assert len(slack.api["chat.postEphemeral"]) == 1  # the reviewer's one confirmation
    assert len(slack.api["views.publish"]) == 1
    assert slack.bot.review.group(group_id).answered_at == answered_at
    record(REPLAYS, REPLAY_COMMAND, replays=1, acted_on_twice=0)


async def test_a_replayed_event_is_answered_and_logged_once(slack: SlackHarness) -> None:
    await slack.event(dm(TWEET))
    await replayed(slack)
    assert len(answers(slack.api["chat.postMessage"])) == 1
    assert logged_texts(slack) == {TWEET: 1}
    record(REPLAYS, REPLAY_COMMAND, replays=1, acted_on_twice=0)


# -- questions acknowledged by a process that stopped -----------------------------------------
def unreplied(db: Path) -> list[tuple[str, str]]:
    """(state, conversation) of received questions whose reply has not gone out."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT state, conversation FROM received_questions WHERE state != ?", [REPLIED]
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def spooled(db: Path) -> list[tuple[str, str]]:
    """("spooled", conversation) of questions acknowledged and kept in the spool beside the
    database, not yet moved into it (bot.received_spool)."""
    found: list[tuple[str, str]] = []
    for path in sorted(db.with_name(db.name + ".received").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                found.append(("spooled", str(json.loads(line)["conversation"])))
    return found


async def until_all_replied(db: Path) -> None:
    deadline = time.monotonic() + GUARD
    while unreplied(db):
        assert time.monotonic() < deadline, "questions left unanswered"
        await asyncio.sleep(0.02)


async def test_every_kind_of_question_a_stopped_process_acknowledged_is_answered_on_start(
    settings: Settings,
) -> None:
    # A process that acknowledged a question of every kind and stopped before replying: one
    # of them it had answered and logged, not sent.
    stopped = PolicyBot.create(settings)
    stopped.ensure_policy()
    long_ago = datetime.now(UTC) - timedelta(minutes=2)
    asked = [
        ("event:EvDM", IncomingQuestion(ROADMAP, "slack", "U1", "D1"), "dm"),
        ("event:EvMENTION", IncomingQuestion(TWEET, "slack", "U2", "C100/1700000009.1"), "mention"),
        ("signed:command", IncomingQuestion(PHOTOS, "slack", "U3"), "command"),
        ("signed:shortcut", IncomingQuestion(DRAFT, "slack", "U4"), CHECK),
        ("event:EvLOGGED", IncomingQuestion(PHOTOS, "slack", "U5", "D5"), "dm"),
    ]
    for key, question, kind in asked:
        delivery = stopped.received.receive("slack", key, question, kind, now=long_ago)
    assert delivery.received_id is not None
    await stopped.ask(asked[-1][1], received=delivery.received_id)
    await stopped.aclose()
    stopped.storage.close()

    async with (
        fake_slack_api() as api,
        slack_server(settings, api=api, on_disk=True) as restarted,
    ):
        posts = await api.wait_for("chat.postMessage", len(asked))
        await until_all_replied(Path(settings.db_path))
        by_channel = {p["channel"]: p for p in posts}
        assert sorted(by_channel) == ["C100", "D1", "D3", "D4", "D5"]  # /policy, check: by DM
        assert by_channel["C100"]["thread_ts"] == "1700000009.1"
        for post in posts:
            assert post["text"].startswith(f"{messages.LATE}: ")
            assert messages.LATE in str(post["blocks"][0])
        assert "roadmap" in by_channel["D1"]["text"].lower()
        assert DRAFT in str(by_channel["D4"]["blocks"][0])
        # Logged once each: the one logged before the stop is not logged again, the draft never.
        assert logged_texts(restarted) == {ROADMAP: 1, TWEET: 1, PHOTOS: 2}
        # A retry of any of them reaching the new process is dropped.
        assert not restarted.bot.claim_delivery("slack", "event:EvDM")
        assert unreplied(Path(settings.db_path)) == []
    record(
        "Slack: acknowledged questions answered after a restart",
        "pytest tests/test_reliability_durable.py -k stopped_process",
        kinds=len({kind for _, _, kind in asked}),
        left_unanswered=len(asked),
        answered_late=len(posts),
        logged_twice=0,
    )


class Recorded:
    """Stands in for a platform's LateReplier: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[LateReply] = []

    async def send(self, reply: LateReply) -> None:
        self.sent.append(reply)


def stopped_after_receiving(settings: Settings, key: str, text: str, at: datetime) -> None:
    """A process that acknowledged a DM at `at`, then stopped without answering it."""
    stopped = PolicyBot.create(settings)
    stopped.ensure_policy()
    stopped.received.receive(
        "slack", key, IncomingQuestion(text, "slack", "U1", "D1"), "dm", now=at
    )
    stopped.mark.release()
    stopped.storage.close()


async def test_an_answer_given_on_start_says_it_is_late_only_when_it_is(
    settings: Settings,
) -> None:
    received = datetime.now(UTC)
    stopped_after_receiving(settings, "event:EvA", ROADMAP, received)
    restarted = PolicyBot.create(settings)
    replier = Recorded()
    restarted.late_repliers["slack"] = replier
    assert await restarted.answer_left_over(now=received + LATE_AFTER / 2) == 1
    (reply,) = replier.sent
    assert not reply.late and reply.answer is not None and reply.question == ROADMAP
    assert await restarted.answer_left_over(now=received + LATE_AFTER * 2) == 0  # none left

    stopped_after_receiving(settings, "event:EvB", TWEET, received)
    assert await restarted.answer_left_over(now=received + LATE_AFTER * 2) == 1
    assert replier.sent[-1].late and replier.sent[-1].question == TWEET
    restarted.mark.release()
    restarted.storage.close()


async def test_questions_a_running_process_is_answering_are_left_to_it(
    settings: Settings,
) -> None:
    async with (
        fake_slack_api() as api,
        slack_server(settings, api=api, on_disk=True) as running,
    ):
        # Received by the running server and not answered yet (as if it were busy with it).
        busy = IncomingQuestion(TWEET, "slack", "U1", "D1")
        running.bot.received.receive("slack", "event:EvBUSY", busy, "dm")
        async with slack_server(settings, api=api, on_disk=True) as starting:
            assert await starting.bot.answer_left_over() == 0
            await starting.event(dm(ROADMAP, channel="D9", user="U9"))
            posts = await api.wait_for("chat.postMessage")
            await listeners_done()
            assert [p["channel"] for p in posts] == ["D9"]
            assert [s for s, _ in unreplied(Path(settings.db_path))] == ["received"]


def test_the_write_before_the_acknowledgement_is_measured(tmp_path: Path) -> None:
    """Keeping the question shares the commit the de-duplication already made: its cost is
    that commit's (SQLite's fsync), measured with and without a question."""
    bot = PolicyBot.create(Settings(db_path=str(tmp_path / "cost.db")))
    costs: dict[str, list[float]] = {"dedup_only": [], "with_question": []}
    for n in range(200):
        question = IncomingQuestion(f"{ROADMAP} ({n})", "slack", f"U{n}", f"D{n}")
        for kind, carried in (("dedup_only", None), ("with_question", question)):
            started = time.perf_counter()
            delivery = bot.received.receive("slack", f"event:Ev{kind}{n}", carried, "dm")
            costs[kind].append((time.perf_counter() - started) * 1000)
            assert delivery.first and (delivery.received_id is None) == (carried is None)
    bot.mark.release()
    bot.storage.close()
    record(
        "Slack: the write before the acknowledgement",
        "pytest tests/test_reliability_durable.py -k measured",
        writes=sum(len(c) for c in costs.values()),
        **{f"{kind}_{k}": v for kind, c in costs.items() for k, v in percentiles(c).items()},
    )


# -- SIGKILL in the middle of a burst ---------------------------------------------------------
BURST = 150
#: The answer (not placeholder) at which the fake Slack kills the server, before taking it.
KILL_AT = 30


@dataclasses.dataclass
class Burst:
    bodies: list[tuple[str, bytes]]
    status: dict[str, int] = dataclasses.field(default_factory=dict)


async def send_all(url: str, burst: Burst, *, retry: bool = False, clients: int = 20) -> None:
    """Each body signed at the moment it is sent (Slack re-signs its retries)."""
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def send(key: str, body: bytes) -> None:
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": slack_load.sign(body, timestamp),
            }
            if retry:
                headers |= {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
            try:
                async with http.post(url + "/slack/events", data=body, headers=headers) as sent:
                    await sent.read()
                    burst.status[key] = sent.status
            except aiohttp.ClientError:
                burst.status[key] = -1

        await asyncio.gather(*(send(key, body) for key, body in burst.bodies))


def final_answers(api: FakeSlackApi) -> dict[str, list[str]]:
    """DM channel -> the answers it got (a placeholder replaced counts once, as its answer)."""
    got: dict[str, list[str]] = {}
    for method in ("chat.postMessage", "chat.update"):
        for call in answers(api[method]):
            got.setdefault(str(call["channel"]), []).append(str(call["text"]))
    return got


async def test_sigkill_in_a_burst_of_dms_loses_no_acknowledged_question(
    tmp_path: Path,
) -> None:
    questions = slack_load.bench_questions()
    bodies = [
        slack_load.event_body(n, f"{questions[n % len(questions)]} (#{n})", "K")
        for n in range(1, 2 * BURST, 2)  # odd numbers: DMs, one asker and channel each
    ]
    burst = Burst(bodies)
    async with fake_slack_api() as api:
        server = await slack_load.start("policybot", api.url, tmp_path, tmp_path / "1.log")
        killed_at: list[float] = []

        def kill_at_the_answer(method: str, payload: dict[str, Any]) -> bool:
            if method not in {"chat.postMessage", "chat.update"} or killed_at:
                return bool(killed_at)
            if str(payload.get("text", "")).startswith("Thinking"):
                return False
            if len(final_answers(api)) + 1 >= KILL_AT:  # this one would be the KILL_AT-th
                server.process.send_signal(signal.SIGKILL)
                killed_at.append(time.monotonic())
                return True
            return False

        api.intercept = kill_at_the_answer
        try:
            await send_all(server.url, burst)
            deadline = time.monotonic() + GUARD
            while server.process.poll() is None:  # answering goes on after the last ack
                assert time.monotonic() < deadline, "the server was never killed"
                await asyncio.sleep(0.02)
            assert server.process.returncode == -signal.SIGKILL
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.process.pid, signal.SIGKILL)
        db = tmp_path / "serve.db"
        acked = {key for key, status in burst.status.items() if status == 200}
        before = final_answers(api)
        left = unreplied(db) + spooled(db)
        went_out_unmarked = {c for s, c in left if c in before}  # posted, not yet marked
        # Answers given on start count as late: wait out LATE_AFTER from the kill.
        await asyncio.sleep(
            max(0.0, LATE_AFTER.total_seconds() - (time.monotonic() - killed_at[0]))
        )
        api.intercept = None
        restarted = await slack_load.start("policybot", api.url, tmp_path, tmp_path / "2.log")
        try:
            # Slack retries what was not acknowledged; the restarted process drops those it had
            # taken before the kill and answers the others.
            unacked = Burst([(k, b) for k, b in bodies if k not in acked])
            await send_all(restarted.url, unacked, retry=True)
            deadline = time.monotonic() + 30  # a hang guard: the asserts below say what is missing
            while (len(final_answers(api)) < BURST or unreplied(db)) and (
                time.monotonic() < deadline
            ):
                await asyncio.sleep(0.05)
        finally:
            slack_load.stop(restarted)
    after = final_answers(api)
    lost = [key for key in acked if key not in after]
    assert lost == []
    twice = {key for key, got in after.items() if len(got) > 1}
    assert twice <= went_out_unmarked  # only a reply that went out just before the kill
    late = {key for key, got in after.items() if key not in before}
    recovered = {c for _, c in left}
    for key in recovered - set(before):
        assert after[key][-1].startswith(f"{messages.LATE}: "), key
    for key in late - recovered:  # retries the restarted process answered as new
        assert not after[key][-1].startswith(messages.LATE), key
    with contextlib.closing(sqlite3.connect(db)) as conn:
        logged = Counter(r[0] for r in conn.execute("SELECT text FROM questions"))
    assert len(logged) == BURST and set(logged.values()) == {1}
    record(
        "Faults: SIGKILL of `policybot serve` in a burst of Slack DMs",
        "pytest tests/test_reliability_durable.py -k sigkill",
        burst=BURST,
        acked_before_kill=len(acked),
        replied_before_kill=len(before),
        left_received=sum(s == "received" for s, _ in left),
        left_logged=sum(s == "logged" for s, _ in left),
        left_spooled=sum(s == "spooled" for s, _ in left),
        answered_late_on_start=len(recovered - set(before)),
        retried_by_slack=len(unacked.bodies),
        answered=len(after),
        answered_twice=len(twice),
        logged=sum(logged.values()),
        lost=len(lost),
    )
