"""Teams questions kept before the acknowledgement, answered once, never lost.

Over the real server on 127.0.0.1 and the Bot Framework connector stub: a Teams message is
acknowledged while another connection holds SQLite's write lock (the question is on disk, in
the spool, not yet in the database) and answered once the lock goes; a redelivered activity
(the Bot Framework sends it again when the acknowledgement is slow) is answered once; a
`policybot serve` killed with SIGKILL after the acknowledgement and before the answer answers
on its next start, once, through the connector, replying to the question's message; and a
follow-up answered that way is read with the turn before it, as a live one is; and a card's
button is acknowledged while the lock is held and applied once, redelivered or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from microsoft_agents.authentication.msal import MsalAuth

from adapters.server import build_app
from bench import slack_load
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.notify import LateReply
from bot.store.database import REPLIED, Storage
from tests.fakes.bot_connector import Call, ConnectorStub
from tests.fakes.bot_framework_keys import KeyServer, claims, key_server, sign
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.teams_activities import PERSONAL, card_submit, message
from tests.fakes.teams_harness import card_text, post, submit_data, turns_finished
from tests.reliability import percentiles, record
from tests.test_loop_acks import WriteLock
from tests.test_reliability_conversations import FIRST, FOLLOW, TAKEN

#: How long the other connection holds the write lock (a `policybot policy load`, a backup).
LOCK_SECONDS = 2.0
QUESTIONS = (
    "can I tweet about our quarterly revenue?",
    "may I post photos from the team offsite on instagram?",
    "can I share our unreleased roadmap on LinkedIn?",
)
MESSAGES = 8
APP_ID = "00000000-0000-0000-0000-0000000000d0"
APP_PASSWORD = "teams-app-password-for-durable-tests-41c7"
OUTGOING_TOKEN = "outgoing-token-for-durable-tests"
#: The server's settings for Teams in local testing, Slack off.
TEAMS_ONLY = {
    "POLICYBOT_TEAMS_UNAUTHENTICATED": "1",
    "SLACK_SIGNING_SECRET": "",
    "SLACK_BOT_TOKEN": "",
}
DROPPED = "dropping a Teams question another process took first"
COMMAND = "pytest tests/test_reliability_teams_durable.py"


def personal(n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A personal chat of its own and its person."""
    conversation = {"id": f"a:personal-chat-{n}", "conversationType": "personal", "tenantId": "t1"}
    sender = {"id": f"29:person-{n}", "name": f"Person {n}", "aadObjectId": f"aad-person-{n}"}
    return conversation, sender


def answers(calls: list[Call]) -> list[Call]:
    """What the bot sent that is an answer (a card), not "Thinking…"."""
    return [call for call in calls if call.card is not None]


def spool_lines(db: Path) -> list[str]:
    """Questions acknowledged and kept beside the database, not yet moved into it."""
    folder = db.with_name(db.name + ".received")
    return [
        line
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def read_db(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def unreplied(db: Path) -> int:
    rows = read_db(db, "SELECT count(*) FROM received_questions WHERE state != ?", (REPLIED,))
    return int(rows[0][0])


async def until(condition: Any, what: str, guard: float = 30.0) -> None:
    """Wait for `condition()` (a guard timeout only stops a hung test)."""
    deadline = time.monotonic() + guard
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


# -- the acknowledgement does not wait for the database ---------------------------------------
@pytest.fixture
async def keys() -> AsyncIterator[KeyServer]:
    async with key_server() as server:
        yield server


@pytest.fixture
def secured(
    settings: Settings, keys: KeyServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PolicyBot]:
    """A Teams bot checking Bot Framework tokens, on its own SQLite file; its replies' token
    from a stand-in for Microsoft's login (never reached from tests)."""

    async def login(self: MsalAuth, resource_url: str, scopes: list[str], **_: Any) -> str:
        return OUTGOING_TOKEN

    monkeypatch.setattr(MsalAuth, "get_access_token", login)
    bot = PolicyBot.create(
        replace(
            settings,
            microsoft_app_id=APP_ID,
            microsoft_app_password=APP_PASSWORD,
            teams_openid_metadata_url=keys.metadata_url,
        )
    )
    bot.ensure_policy()
    yield bot
    bot.mark.release()
    bot.storage.close()


async def test_teams_messages_are_acknowledged_while_another_process_holds_the_write_lock(
    secured: PolicyBot, keys: KeyServer, stub: ConnectorStub, settings: Settings
) -> None:
    db = Path(settings.db_path)
    token = sign(keys.keys[0], claims(APP_ID, stub.url))
    headers = {"Authorization": f"Bearer {token}"}
    async with serving(build_app(secured)) as base:
        # A first question, so what the first answer costs (reading the policy) is paid.
        conversation, sender = personal(0)
        await post(
            base,
            message(QUESTIONS[0], stub.url, conversation=conversation, sender=sender),
            headers=headers,
        )
        await stub.received(1)
        await turns_finished()
        latencies: list[float] = []
        while_locked: list[bool] = []

        async def send(n: int) -> int:
            conversation, sender = personal(n)
            activity = message(
                f"{QUESTIONS[n % len(QUESTIONS)]} (#{n})",
                stub.url,
                conversation=conversation,
                sender=sender,
            )
            started = time.monotonic()
            status, _ = await post(base, activity, headers=headers)
            latencies.append((time.monotonic() - started) * 1000)
            while_locked.append(not lock.released.is_set())
            return status

        with WriteLock(db, LOCK_SECONDS) as lock:
            statuses = await asyncio.gather(*(send(n) for n in range(1, MESSAGES + 1)))
            kept_while_locked = spool_lines(db)
            answered_while_locked = len(answers(stub.calls)) - 1
        assert statuses == [202] * MESSAGES
        # The lock held up none of them: every acknowledgement came before it went.
        assert while_locked == [True] * MESSAGES
        assert answered_while_locked == 0  # nothing could be logged, so nothing was answered
        assert len(kept_while_locked) == MESSAGES
        await until(lambda: len(answers(stub.calls)) == MESSAGES + 1, "questions left unanswered")
        await turns_finished()
        await until(lambda: unreplied(db) == 0, "replies not recorded")
    per_chat = Counter(call.conversation_id for call in answers(stub.calls))
    assert set(per_chat) == {personal(n)[0]["id"] for n in range(MESSAGES + 1)}
    assert set(per_chat.values()) == {1}
    logged = Counter(str(r.text) for r in secured.storage.questions(status=None))
    assert len(logged) == MESSAGES + 1 and set(logged.values()) == {1}
    # What was kept before the acknowledgement holds no token and no secret: the conversation
    # reference a late answer needs (service URL, conversation, the message), nothing else.
    for line in kept_while_locked:
        kept = json.loads(line)
        assert token not in line and APP_PASSWORD not in line and OUTGOING_TOKEN not in line
        reference = json.loads(kept["conversation"])
        assert reference["serviceUrl"] == stub.url and reference["activityId"]
    assert token.encode() not in db.read_bytes()
    record(
        "Loop: Teams acknowledgements while another process holds the write lock",
        f"{COMMAND} -k write_lock",
        lock_held_s=LOCK_SECONDS,
        messages=MESSAGES,
        acked=sum(status == 202 for status in statuses),
        acked_while_locked=sum(while_locked),
        kept_on_disk_while_locked=len(kept_while_locked),
        answered=len(per_chat) - 1,
        answered_twice=sum(count > 1 for count in per_chat.values()),
        lost=MESSAGES + 1 - len(per_chat),
        **{f"ack_{k}": v for k, v in percentiles(latencies).items()},
    )


async def test_a_redelivered_activity_is_answered_once(
    settings: Settings, stub: ConnectorStub
) -> None:
    bot = PolicyBot.create(replace(settings, teams_unauthenticated=True))
    bot.ensure_policy()
    db = Path(settings.db_path)
    activity = message(QUESTIONS[2], stub.url)
    try:
        async with serving(build_app(bot, host=LOOPBACK)) as base:
            # The Bot Framework's redeliveries: two while the first is still being answered
            # (its question on disk, the database locked), one after it was answered.
            with WriteLock(db, LOCK_SECONDS):
                statuses = [status for status, _ in [await post(base, activity) for _ in range(3)]]
            await until(lambda: len(answers(stub.calls)) >= 1, "the question was not answered")
            await turns_finished()
            statuses.append((await post(base, activity))[0])
            # Another question after it, answered: the redelivery before it had its turn.
            await post(base, message(QUESTIONS[0], stub.url, conversation=personal(1)[0]))
            await until(lambda: len(answers(stub.calls)) >= 2, "the next question was not answered")
            await turns_finished()
        in_chat = answers(stub.in_conversation(PERSONAL["id"]))
        assert statuses == [202] * 4
        assert len(in_chat) == 1
        logged = Counter(str(r.text) for r in bot.storage.questions(status=None))
        assert logged == {QUESTIONS[2]: 1, QUESTIONS[0]: 1}
    finally:
        bot.mark.release()
        bot.storage.close()
    record(
        "Teams: redelivered activities answered once",
        f"{COMMAND} -k redelivered",
        deliveries=4,
        redelivered_while_answering=2,
        redelivered_after_answer=1,
        answered=len(in_chat),
        logged=logged[QUESTIONS[2]],
    )


async def test_a_button_is_acknowledged_while_the_write_lock_is_held_and_applied_once(
    settings: Settings, stub: ConnectorStub
) -> None:
    """A card's button (here "Not helpful") waits for neither the worker nor the database
    before its 202; its turn runs after, once, though the Bot Framework sent it twice to this
    process and once more to another on the same database."""
    bot = PolicyBot.create(replace(settings, teams_unauthenticated=True))
    bot.ensure_policy()
    db = Path(settings.db_path)
    try:
        async with serving(build_app(bot, host=LOOPBACK)) as base:
            await post(base, message(QUESTIONS[2], stub.url))
            (answer,) = await stub.received(1)
            await turns_finished()
            pressed = submit_data(answer.card or {})["Not helpful"]
            click = card_submit("not_helpful", pressed["question_id"], stub.url)
            latencies: list[float] = []
            with WriteLock(db, LOCK_SECONDS) as lock:
                statuses = []
                for _ in range(2):  # the click, and the Bot Framework's redelivery of it
                    started = time.monotonic()
                    statuses.append((await post(base, click))[0])
                    latencies.append((time.monotonic() - started) * 1000)
                acked_while_locked = not lock.released.is_set()
                replied_while_locked = len(stub.calls) - 1
            await until(lambda: len(stub.calls) >= 2, "the click was never applied")
            await turns_finished()
        # The redelivery reaching another process on the same database: dropped there.
        other = PolicyBot.create(replace(settings, teams_unauthenticated=True))
        try:
            async with serving(build_app(other, host=LOOPBACK)) as other_base:
                statuses.append((await post(other_base, click))[0])
                await turns_finished()
        finally:
            other.mark.release()
            other.storage.close()
        after_click = [call.text for call in stub.calls[1:]]
        assert statuses == [202] * 3 and acked_while_locked and replied_while_locked == 0
        assert after_click == [messages.REACTION_NOTES["not_helpful"]]
        assert [q.id for q in bot.open_questions()] == [pressed["question_id"]]
    finally:
        bot.mark.release()
        bot.storage.close()
    record(
        "Loop: a Teams button while another process holds the write lock",
        f"{COMMAND} -k button",
        lock_held_s=LOCK_SECONDS,
        deliveries=len(statuses),
        acked_while_locked=int(acked_while_locked),
        applied=len(after_click),
        **{f"ack_{k}": v for k, v in percentiles(latencies).items()},
    )


# -- SIGKILL after the acknowledgement, before the answer -------------------------------------
async def start_server(folder: Path, log: str) -> slack_load.Server:
    # The Slack API's address is never called: Slack is off (TEAMS_ONLY).
    return await slack_load.start(
        "policybot", "http://127.0.0.1:9", folder, folder / log, extra_env=TEAMS_ONLY
    )


async def killed_after_acknowledging(
    server: slack_load.Server, activity: dict[str, Any]
) -> tuple[int, bool, int]:
    """Post `activity` while another connection holds the write lock, and SIGKILL the server
    once it is acknowledged, the lock still held: (status, acknowledged while locked, what
    the spool kept)."""
    assert server.db is not None
    try:
        with WriteLock(server.db, LOCK_SECONDS) as lock:
            status, _ = await post(server.url, activity)
            acked_while_locked = not lock.released.is_set()
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            server.process.kill()
    return status, acked_while_locked, len(spool_lines(server.db))


async def test_a_teams_question_acknowledged_before_a_sigkill_is_answered_once_on_restart(
    tmp_path: Path, stub: ConnectorStub
) -> None:
    activity = message(QUESTIONS[1], stub.url)
    server = await start_server(tmp_path, "1.log")
    status, acked_while_locked, kept = await killed_after_acknowledging(server, activity)
    assert status == 202 and acked_while_locked
    assert server.process.returncode == -signal.SIGKILL
    assert answers(stub.calls) == [] and kept == 1  # acknowledged, kept, never answered
    db = tmp_path / "serve.db"
    restarted = await start_server(tmp_path, "2.log")
    try:
        await until(lambda: len(answers(stub.calls)) == 1, "not answered on restart")
        await until(lambda: unreplied(db) == 0, "the late reply was not recorded")
        # The Bot Framework redelivers what it saw no acknowledgement for; here, the same
        # activity reaching the restarted process is dropped there.
        redelivered, _ = await post(restarted.url, activity)
        await until(lambda: DROPPED in (tmp_path / "2.log").read_text(), "not dropped")
    finally:
        slack_load.stop(restarted)
    (answer,) = answers(stub.calls)
    # In the chat it was asked in, as a reply to the question's own message.
    assert answer.conversation_id == PERSONAL["id"] and answer.activity_id == activity["id"]
    assert redelivered == 202
    logged = read_db(db, "SELECT text FROM questions")
    assert logged == [(QUESTIONS[1],)]
    assert spool_lines(db) == []
    record(
        "Faults: SIGKILL of `policybot serve` after a Teams acknowledgement",
        f"{COMMAND} -k sigkill",
        acked_while_locked=int(acked_while_locked),
        answered_before_kill=0,
        kept_in_spool_at_kill=kept,
        answered_on_restart=len(answers(stub.calls)),
        redelivered_after_restart=1,
        answered_twice=0,
        logged=len(logged),
    )


async def test_a_follow_up_answered_after_a_restart_is_read_with_the_turn_before_it(
    tmp_path: Path, stub: ConnectorStub
) -> None:
    server = await start_server(tmp_path, "1.log")
    await post(server.url, message(FIRST, stub.url))
    await until(lambda: len(answers(stub.calls)) == 1, "the first question was not answered")
    db = tmp_path / "serve.db"
    await until(lambda: unreplied(db) == 0, "the first reply was not recorded")
    status, acked_while_locked, kept = await killed_after_acknowledging(
        server, message(FOLLOW, stub.url)
    )
    assert status == 202 and acked_while_locked and kept == 1
    restarted = await start_server(tmp_path, "2.log")
    try:
        await until(lambda: len(answers(stub.calls)) == 2, "the follow-up was not answered")
        await until(lambda: unreplied(db) == 0, "the late reply was not recorded")
    finally:
        slack_load.stop(restarted)
    late = answers(stub.calls)[1]
    assert late.conversation_id == PERSONAL["id"]
    assert TAKEN in card_text(late.card or {})  # condensed with the question before it
    rows = read_db(db, "SELECT text, standalone, conversation_key FROM questions ORDER BY id")
    assert [(text, standalone is not None) for text, standalone, _ in rows] == [
        (FIRST, False),
        (FOLLOW, True),
    ]
    keys = {key for _, _, key in rows}
    assert len(keys) == 1 and PERSONAL["id"] not in str(keys)  # one conversation, a pseudonym
    record(
        "Conversations: a Teams follow-up answered after a restart",
        f"{COMMAND} -k follow_up",
        follow_ups_left_by_a_kill=kept,
        answered_on_restart=1,
        read_with_the_turn_before=int(TAKEN in card_text(late.card or {})),
    )


# -- the conversation a received question continues --------------------------------------------
def test_a_received_question_keeps_its_conversation_until_its_reply_went_out(
    new_storage: Callable[[], Storage],
) -> None:
    storage = new_storage()
    row = {"kind": "dm", "user_id": "U1", "conversation": "D1", "text": FOLLOW}
    received_id = storage.receive("slack", "event:Ev1", row | {"conversation_key": "conv-1"})
    (left,) = storage.unreplied()
    assert left.conversation_key == "conv-1"
    assert received_id is not None
    storage.mark_replied(received_id)
    rows = storage.db.execute("SELECT conversation_key FROM received_questions").fetchall()
    assert [r[0] for r in rows] == [""]  # cleared with the text and the reply address


class Recorded:
    """Stands in for a platform's LateReplier: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[LateReply] = []

    async def send(self, reply: LateReply) -> None:
        self.sent.append(reply)


async def test_a_follow_up_a_stopped_process_received_is_answered_with_its_conversation(
    settings: Settings,
) -> None:
    """A question received straight into the database (no spool: Slack's path when the spool
    cannot be written) keeps the conversation as the log's pseudonym, never the platform's
    thread, and is read with the turn before it when a restarted process answers it."""
    thread = "D1/1700000000.000100"
    stopped = PolicyBot.create(settings)
    stopped.ensure_policy()
    await stopped.ask(IncomingQuestion(FIRST, "slack", "U1", "D1", conversation_key=thread))
    follow = IncomingQuestion(FOLLOW, "slack", "U1", "D1", conversation_key=thread)
    assert stopped.received.receive("slack", "event:EvFOLLOW", follow, "dm").first
    (left,) = stopped.storage.unreplied()
    assert left.conversation_key == stopped.question_log.conversation_pseudonym("slack", thread)
    assert thread not in left.conversation_key
    await stopped.aclose()
    stopped.mark.release()
    stopped.storage.close()

    restarted = PolicyBot.create(settings)
    replier = Recorded()
    restarted.late_repliers["slack"] = replier
    try:
        assert await restarted.answer_left_over() == 1
        (reply,) = replier.sent
        assert reply.answer is not None and reply.answer.asked_as  # condensed, as live
        first, second = sorted(restarted.storage.questions(status=None), key=lambda r: r.id)
        assert second.standalone and second.conversation_key == first.conversation_key
    finally:
        await restarted.aclose()
        restarted.mark.release()
        restarted.storage.close()
