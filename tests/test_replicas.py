"""Several processes on one database (replicas of `serve`, `questions answer` and `digest` run
beside it), on SQLite and PostgreSQL: each reviewed answer reaches its asker once, the digest
is posted once per week and channel, and a starting process answers only the questions a dead
one left (on PostgreSQL, where no lock file can be shared, by the dead one's advisory lock).

Races are between two `Storage` connections in threads, or two real processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from adapters.server import build_app
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.notify import LateReply
from bot.store.database import Storage
from bot.store.groups import DELIVERY_LEASE
from bot.store.liveness import ProcessMark
from tests.conftest import ROOT
from tests.fakes.bot_connector import connector_stub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.slack_api import GUARD, fake_slack_api
from tests.fakes.teams_activities import message
from tests.fakes.teams_harness import local_teams
from tests.reliability import record

PREMIUM = "can I expense LinkedIn Premium?"
ANSWER = "Yes, up to 30 USD a month; file it under training."
TWEET = "can I tweet about our quarterly revenue?"
CLAIMS = "Replicas: each reviewed answer and digest claimed once"
CLAIMS_COMMAND = "pytest tests/test_replicas.py"


def settings_on(location: str, tmp_path: Path) -> Settings:
    base = Settings(db_path=str(tmp_path / "unused.db"), retriever="lexical")
    return base.with_db(location)


def cli_env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYBOT_", "SLACK_"))}
    env.pop("DATABASE_URL", None)
    return {
        **env,
        "POLICYBOT_RETRIEVER": "lexical",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": api_url,
        "PYTHONPATH": str(ROOT),
    }


def asked_by_many(location: str, tmp_path: Path, askers: int, *, answered: bool = False) -> int:
    """`askers` people ask the same uncovered question by DM; the id of their one group,
    `answered` by a reviewer (stored, not yet delivered) when asked."""
    bot = PolicyBot.create(settings_on(location, tmp_path))
    try:
        bot.ensure_policy()
        for n in range(askers):
            asyncio.run(bot.ask(IncomingQuestion(PREMIUM, "slack", f"U{n:03d}", "")))
        (group,) = bot.review.queue()
        assert group.count == askers
        if answered:
            bot.review.answer(group.id, ANSWER)
        return group.id
    finally:
        asyncio.run(bot.aclose())
        bot.storage.close()


# -- reviewed answers, claimed per asker -----------------------------------------------------
def test_two_connections_racing_claim_each_reviewed_answer_once(
    database_location: str, engine: str, tmp_path: Path
) -> None:
    askers = 60
    asked_by_many(database_location, tmp_path, askers, answered=True)
    with closing(Storage.open(database_location)) as storage:
        ids = [p.question_id for p in storage.pending_deliveries()]
    assert len(ids) == askers
    ready = threading.Barrier(2)

    def claim_all(claimant: str) -> list[int]:
        storage = Storage.open(database_location)  # a connection each, as each replica has
        try:
            ready.wait()
            return [qid for qid in ids if storage.claim_reply(qid, claimant)]
        finally:
            storage.close()

    with ThreadPoolExecutor(2) as pool:
        won = list(pool.map(claim_all, ["replica-a", "replica-b"]))
    assert sorted(won[0] + won[1]) == ids  # every one claimed, none by both
    record(
        CLAIMS,
        CLAIMS_COMMAND,
        **{
            f"{engine}_reviewed_answers_raced": askers,
            f"{engine}_claimed_twice": len(set(won[0]) & set(won[1])),
        },
    )


def test_an_expired_claim_is_taken_again_and_a_failed_send_gives_it_up(
    new_storage: Callable[[], Storage],
) -> None:
    storage = new_storage()
    qid = storage.log_question(
        {"text": PREMIUM, "status": "open"}, reply_to={"platform": "slack", "user_id": "U1"}
    )
    now = datetime.now(UTC)
    assert storage.claim_reply(qid, "a", now=now)
    # The claimant is mid-send: nobody else sends it, however often they try...
    assert not storage.claim_reply(qid, "b", now=now + DELIVERY_LEASE - timedelta(seconds=1))
    # ...until its lease has run out: it died mid-send, and the answer still goes out.
    assert storage.claim_reply(qid, "b", now=now + DELIVERY_LEASE)
    storage.record_delivery_failure(qid, "DeliveryError: channel_not_found")
    assert storage.claim_reply(qid, "c", now=now + DELIVERY_LEASE)  # the failure let it go
    storage.delete_reply_address(qid)  # delivered
    assert not storage.claim_reply(qid, "d", now=now + DELIVERY_LEASE * 3)


async def test_two_processes_answering_a_group_send_each_asker_the_answer_once(
    database_location: str, engine: str, tmp_path: Path
) -> None:
    """`questions answer` run twice at once (a reviewer's CLI beside another replica's delivery
    run): before the claim, both read the same pending addresses and messaged every asker
    twice."""
    askers = 40
    group_id = await asyncio.to_thread(asked_by_many, database_location, tmp_path, askers)
    async with fake_slack_api() as api:
        api.delays["chat.postMessage"] = 0.05  # a slow Slack: both processes are mid-run
        command = [sys.executable, "-m", "bot.cli", "--db", database_location]
        command += ["questions", "answer", str(group_id), ANSWER]
        started = time.monotonic()
        processes = [
            await asyncio.create_subprocess_exec(
                *command,
                env=cli_env(api.url),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        outputs = [await asyncio.wait_for(p.communicate(), GUARD * 6) for p in processes]
        elapsed_ms = (time.monotonic() - started) * 1000
        for process, (output, _) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, output.decode()
        sent = Counter(c["channel"] for c in api["chat.postMessage"] if ANSWER in c["text"])
    assert sorted(sent) == sorted(f"D{n:03d}" for n in range(askers))  # nobody missed
    assert set(sent.values()) == {1}  # nobody twice
    with closing(Storage.open(database_location)) as storage:
        assert storage.pending_deliveries() == []
    record(
        CLAIMS,
        CLAIMS_COMMAND,
        **{
            f"{engine}_askers": askers,
            f"{engine}_answer_processes": len(processes),
            f"{engine}_answers_sent": sum(sent.values()),
            f"{engine}_answers_sent_twice": sum(1 for c in sent.values() if c > 1),
            f"{engine}_both_runs_ms": round(elapsed_ms),
        },
    )


# -- the weekly digest, once --------------------------------------------------------------------
def test_the_digest_of_a_period_is_claimed_once_and_a_failed_post_is_retried(
    database_location: str,
) -> None:
    Storage.open(database_location).close()  # migrated once, as the first process would
    period = "2026-W49/7d/slack"
    ready = threading.Barrier(4)

    def claim(claimant: str) -> bool:
        storage = Storage.open(database_location)
        try:
            ready.wait()
            return storage.claim_digest(period, claimant)
        finally:
            storage.close()

    with ThreadPoolExecutor(4) as pool:
        won = dict(zip("abcd", pool.map(claim, "abcd"), strict=True))
    (winner,) = [c for c, took in won.items() if took]
    storage = Storage.open(database_location)
    try:
        storage.digest_posted(period, winner, posted=False)  # the platform refused it
        assert storage.claim_digest(period, "e")  # so the next run posts it
        storage.digest_posted(period, "e", posted=True)
        later = datetime.now(UTC) + timedelta(days=1)
        assert not storage.claim_digest(period, "f", now=later)  # posted: never again
        # A run that died while posting leaves its claim; it is taken once the lease ends.
        assert storage.claim_digest("2026-W50/7d/slack", "g")
        assert not storage.claim_digest("2026-W50/7d/slack", "h")
        assert storage.claim_digest("2026-W50/7d/slack", "h", now=later)
    finally:
        storage.close()


async def test_two_digest_runs_post_the_week_once(
    database_location: str, engine: str, tmp_path: Path
) -> None:
    """Every replica's clock process (or two cron jobs) runs `policybot digest` on Monday:
    before the claim, the channel got one digest per run."""
    await asyncio.to_thread(asked_by_many, database_location, tmp_path, 2)
    async with fake_slack_api() as api:
        api.delays["chat.postMessage"] = 0.2
        env = {**cli_env(api.url), "POLICYBOT_DIGEST_SLACK_CHANNEL": "CDIGEST"}
        command = [sys.executable, "-m", "bot.cli", "--db", database_location, "digest"]
        processes = [
            await asyncio.create_subprocess_exec(
                *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(2)
        ]
        outputs = [await asyncio.wait_for(p.communicate(), GUARD * 6) for p in processes]
        assert [p.returncode for p in processes] == [0, 0], outputs
        posts = [c for c in api["chat.postMessage"] if c["channel"] == "CDIGEST"]
    said = sorted(err.decode().strip().splitlines()[0] for _, err in outputs)
    assert said == [
        "slack: not posted: already posted for this period by another run",
        "slack: posted",
    ]
    assert len(posts) == 1
    record(
        CLAIMS,
        CLAIMS_COMMAND,
        **{f"{engine}_digest_runs": len(processes), f"{engine}_digests_posted": len(posts)},
    )


# -- who is still running, on PostgreSQL ---------------------------------------------------------
class Recorded:
    """Stands in for a platform's LateReplier: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[LateReply] = []

    async def send(self, reply: LateReply) -> None:
        self.sent.append(reply)


HOLDER = """
import sys, time
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
settings = Settings(retriever="lexical").with_db(sys.argv[1])
bot = PolicyBot.create(settings)
bot.received.receive("slack", "event:EvBUSY", IncomingQuestion(sys.argv[2], "slack", "U1", "D1"), "dm")
print(bot.mark.token, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_a_starting_replica_answers_only_what_a_dead_one_left_on_postgresql(
    database_location: str, tmp_path: Path
) -> None:
    """On PostgreSQL there is no file beside the database to lock: before the advisory lock,
    a starting replica took every other replica's acknowledged questions for a dead one's and
    answered them too."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_location, TWEET],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    try:
        assert holder.stdout is not None
        token = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), GUARD * 3)
        token_text = token.decode().strip()
        assert token_text, "the holding process did not start"
        starting = PolicyBot.create(settings_on(database_location, tmp_path))
        replier = Recorded()
        starting.late_repliers["slack"] = replier
        assert starting.mark.running(token_text)
        assert await starting.answer_left_over() == 0  # it is alive: its question is its own
        holder.send_signal(signal.SIGKILL)
        holder.wait(GUARD)
        checks, deadline = 0, time.monotonic() + GUARD  # the server ends its session promptly
        while starting.mark.running(token_text):
            checks += 1
            assert time.monotonic() < deadline, "a killed process's lock was never released"
            await asyncio.sleep(0.02)
        assert await starting.answer_left_over() == 1
        assert [r.question for r in replier.sent] == [TWEET]
        assert await starting.answer_left_over() == 0  # once
        await starting.aclose()
        starting.storage.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    record(
        "PostgreSQL: a replica's questions are left to it while it runs",
        "pytest tests/test_replicas.py -k dead_one",
        questions_of_a_live_replica_taken=0,
        questions_of_a_killed_replica_answered=1,
        checks_until_its_lock_was_free=checks,
    )


@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_process_mark_on_postgresql_is_released_with_its_process(
    database_location: str,
) -> None:
    mine, other = ProcessMark.beside(database_location), ProcessMark.beside(database_location)
    try:
        token = mine.hold()
        assert other.running(token) and mine.running(token)
        assert not other.running("0" * 16)  # no process holds it
        assert not other.running("not-a-token")  # never a mark's token
        assert other.running(token)  # asking does not take it
        mine.release()
        # At once: released means unlocked, not a session closing while its backend lingers.
        assert not other.running(token)
    finally:  # a failure here must not leave a session open into the next test
        mine.release()
        other.release()


def test_a_mark_follows_the_engine_of_its_database(tmp_path: Path) -> None:
    assert ProcessMark.beside(None).folder is None
    on_file = ProcessMark.beside(tmp_path / "bot.db")
    assert on_file.folder == tmp_path / "bot.db.processes" and on_file.database_url is None
    on_postgres = ProcessMark.beside("postgresql://db.example/policybot")
    assert on_postgres.folder is None and on_postgres.database_url is not None


# -- a PostgreSQL that refuses writes ------------------------------------------------------------
@pytest.mark.parametrize("engine", ["postgresql"])
async def test_a_read_only_postgresql_still_answers_and_each_replica_keeps_its_questions(
    database_location: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A failover to a read-only standby: every write refused. Before, PostgreSQL's refusal
    was no StorageError (the question was lost) and the spool had no file on PostgreSQL."""
    caplog.set_level(logging.ERROR, logger="bot.store.unlogged")
    local = tmp_path / "replica" / "policybot.db"
    local.parent.mkdir()
    settings = local_teams(Settings(db_path=str(local), retriever="lexical"))
    bot = PolicyBot.create(settings.with_db(database_location))
    bot.ensure_policy()
    asked = [f"{text} #{n}" for n, text in enumerate([PREMIUM, TWEET] * 3)]
    bot.storage.db.execute("SET default_transaction_read_only = on")
    try:
        async with (
            connector_stub() as stub,
            serving(build_app(bot, host=LOOPBACK)) as base,
            aiohttp.ClientSession() as session,
        ):
            for text in asked:
                async with session.post(
                    base + "/api/messages", json=message(text, stub.url)
                ) as response:
                    assert response.status in (200, 201, 202)
            calls = await stub.received(len(asked))
            assert all(call.card is not None for call in calls)  # every question answered
            async with session.get(base + "/healthz") as response:
                kept = (await response.json())["unlogged_questions"]
            assert kept == len(asked) and bot.storage.questions(status=None) == []
            assert sum("NOT logged" in r.getMessage() for r in caplog.records) == kept
            spool = local.with_name("policybot.db.unlogged.jsonl")
            assert spool.exists()  # on this replica's own disk

            bot.storage.db.execute("SET default_transaction_read_only = off")  # failed back
            async with session.post(
                base + "/api/messages", json=message("may I tweet?", stub.url)
            ) as response:
                assert response.status in (200, 201, 202)
            await stub.received(len(asked) + 1)
        logged = sorted(q.text for q in bot.storage.questions(status=None))
        assert logged == sorted([*asked, "may I tweet?"]) and not spool.exists()
    finally:
        await bot.aclose()
        bot.storage.close()
    record(
        "PostgreSQL: a read-only database while serving",
        "pytest tests/test_replicas.py -k read_only",
        requests=len(asked) + 1,
        answered=len(asked) + 1,
        writes_refused=kept,
        kept_then_logged=kept,
        lost=0,
    )
