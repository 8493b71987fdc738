"""The event loop only does I/O: acknowledgements and health checks do not wait for the
database or for heavy work.

Over the real server on loopback (the fake Slack Web API): another connection holds SQLite's
write lock while Slack events arrive, and every event is acknowledged while the lock is still
held, then answered once after it goes; `/healthz` answers while an activation re-checks the
open questions. Latencies are recorded, never asserted beyond Slack's 3 s retry.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from adapters.slack import blocks as render
from bot import messages
from bot.config import Settings
from bot.received_spool import ReceivedSpool
from bot.store.database import Storage
from tests.conftest import BUNDLED_POLICY
from tests.fakes.slack_api import fake_slack_api
from tests.fakes.slack_harness import slack_server
from tests.reliability import percentiles, record
from tests.test_slack_http import dm
from tests.test_slack_upload import ADMIN, buttons, new_version

#: How long the other connection holds the write lock (a `policybot policy load`, a backup).
LOCK_SECONDS = 2.0
#: Slack retries an event it has no acknowledgement for after this long.
SLACK_RETRY_AFTER = 3.0
EVENTS = 24
QUESTIONS = (
    "can I tweet about our quarterly revenue?",
    "may I post photos from the team offsite on instagram?",
    "can I share our unreleased roadmap on LinkedIn?",
)


class WriteLock:
    """Another connection to the database file holding its write lock, released from a
    thread of its own after `seconds`, whatever the server's event loop is doing."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.seconds = seconds
        self.released = threading.Event()
        self.released_at = 0.0

    def __enter__(self) -> WriteLock:
        self.conn.execute("BEGIN IMMEDIATE")  # the write lock, until ROLLBACK
        threading.Timer(self.seconds, self._release).start()
        return self

    def _release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.released_at = time.monotonic()
        self.released.set()

    def __exit__(self, *_: object) -> None:
        self.released.wait()
        self.conn.close()


async def test_events_are_acknowledged_while_another_process_holds_the_write_lock(
    settings: Settings,
) -> None:
    async with fake_slack_api() as api, slack_server(settings, api=api, on_disk=True) as slack:
        # A first question, so what the first answer costs (reading the policy) is paid.
        await slack.dm("hello, can I post on linkedin?", user="U0")
        await api.wait_for("chat.postMessage")
        latencies: list[float] = []
        while_locked: list[bool] = []

        async def send(n: int) -> httpx.Response:
            started = time.monotonic()
            response = await slack.dm(f"{QUESTIONS[n % len(QUESTIONS)]} (#{n})", user=f"U{n + 1}")
            latencies.append((time.monotonic() - started) * 1000)
            while_locked.append(not lock.released.is_set())
            return response

        with WriteLock(Path(settings.db_path), LOCK_SECONDS) as lock:
            responses = await asyncio.gather(*(send(n) for n in range(EVENTS)))
        assert [r.status_code for r in responses] == [200] * EVENTS
        assert max(latencies) < SLACK_RETRY_AFTER * 1000  # acknowledged before Slack retries
        # The loop was never held up by the lock: every acknowledgement came before it went.
        assert while_locked == [True] * EVENTS

        posts = await api.wait_for("chat.postMessage", EVENTS + 1)
        channels = Counter(str(p["channel"]) for p in posts)
        assert set(channels) == {f"D{n}" for n in range(EVENTS + 1)}
        assert set(channels.values()) == {1}  # each answered once
        logged = Counter(row.text for row in slack.bot.storage.questions(status=None))
        assert len(logged) == EVENTS + 1 and set(logged.values()) == {1}
        for _ in range(200):  # the replies are marked after they went out
            if not slack.bot.storage.unreplied():
                break
            await asyncio.sleep(0.02)
        assert slack.bot.storage.unreplied() == []
    record(
        "Loop: Slack acknowledgements while another process holds the write lock",
        "pytest tests/test_loop_acks.py -k write_lock",
        lock_held_s=LOCK_SECONDS,
        events=EVENTS,
        acked=sum(r.status_code == 200 for r in responses),
        acked_while_locked=sum(while_locked),
        answered=len(channels) - 1,
        answered_twice=sum(c > 1 for c in channels.values()),
        lost=EVENTS + 1 - len(channels),
        **{f"ack_{k}": v for k, v in percentiles(latencies).items()},
    )


OPEN_QUESTIONS = 150


def log_open_questions(storage: Storage) -> None:
    """Open questions the policy did not answer, for an activation to re-check."""
    with storage.transaction():
        for n in range(OPEN_QUESTIONS):
            storage.log_question(
                {
                    "platform": "slack",
                    "asker": f"asker-{n}",
                    "text": f"may I fly a drone over the office for video {n}?",
                    "answered": 0,
                    "status": "open",
                    "citations": [],
                }
            )


async def test_healthz_answers_while_an_activation_rechecks_open_questions(
    settings: Settings,
) -> None:
    async with (
        fake_slack_api() as api,
        slack_server(settings, api=api, on_disk=True, admins=(f"slack:{ADMIN}",)) as slack,
    ):
        bot = slack.bot
        log_open_questions(bot.storage)
        await slack.share_files([api.add_file(BUNDLED_POLICY.name, new_version())], user=ADMIN)
        (summary,) = await api.wait_for("chat.postMessage")
        version_id = buttons(summary["blocks"])[render.ACTION_ACTIVATE]["value"]
        url = api.response_url("activate")
        clicked, activated = asyncio.Event(), asyncio.Event()
        health: list[float] = []
        during: list[bool] = []

        async def poll_health() -> None:
            while not activated.is_set():
                started = time.monotonic()
                response = await slack.http.get("/healthz")
                assert response.status_code == 200
                health.append((time.monotonic() - started) * 1000)
                # Answered after the click was acknowledged and before the activation's reply.
                during.append(clicked.is_set() and not activated.is_set())
                await asyncio.sleep(0.005)

        async def activate() -> None:
            await slack.click(render.ACTION_ACTIVATE, version_id, user=ADMIN, response_url=url)
            clicked.set()
            await api.wait_for("response_url:activate", 2)  # activated, then re-checked
            activated.set()

        await asyncio.gather(poll_health(), activate())
        settled, rechecked = api["response_url:activate"]
        assert f"Re-checking {OPEN_QUESTIONS} open" in str(settled["text"])
        assert f"Re-checked {OPEN_QUESTIONS} of {OPEN_QUESTIONS}" in str(rechecked["text"])
        assert rechecked["replace_original"] is False  # a note under the updated summary
        # Health checks kept being answered while the activation and its re-check were under
        # way (one at a time: with them on the loop, at most the one sent as they ended).
        assert sum(during) >= 3
        progress = (await slack.http.get("/healthz")).json()["recheck"]
        assert progress == {
            "open_questions": OPEN_QUESTIONS,
            "rechecked": OPEN_QUESTIONS,
            "now_answered": progress["now_answered"],
            "finished": True,
        }
    record(
        "Loop: /healthz while an activation re-checks open questions",
        "pytest tests/test_loop_acks.py -k healthz",
        open_questions=OPEN_QUESTIONS,
        health_checks_during_activation=sum(during),
        **{f"healthz_{k}": v for k, v in percentiles(health).items()},
    )


async def test_closing_the_bot_stops_a_background_recheck_before_the_worker(
    settings: Settings,
) -> None:
    """Before, a re-check between slices called the worker again after `aclose` had closed
    it: a new worker thread queried the storage while its owner closed it, and SQLite
    crashed the process (a segmentation fault in a CI run)."""
    async with (
        fake_slack_api() as api,
        slack_server(settings, api=api, on_disk=True, admins=(f"slack:{ADMIN}",)) as slack,
    ):
        bot = slack.bot
        log_open_questions(bot.storage)
        await slack.share_files([api.add_file(BUNDLED_POLICY.name, new_version())], user=ADMIN)
        (summary,) = await api.wait_for("chat.postMessage")
        version_id = buttons(summary["blocks"])[render.ACTION_ACTIVATE]["value"]
        url = api.response_url("activate")
        await slack.click(render.ACTION_ACTIVATE, version_id, user=ADMIN, response_url=url)
        await api.wait_for("response_url:activate", 1)  # activated; the re-check under way
        job = bot.recheck
        assert job is not None and not job.finished
        await bot.aclose()
        for _ in range(50):  # the loop runs whatever the closed bot left scheduled
            await asyncio.sleep(0.01)
        restarted = bot.worker.started
        finished = job.finished
    assert not restarted, "the worker was started again after the bot closed"
    assert not finished and job.done < OPEN_QUESTIONS
    record(
        "Closing the bot during a background re-check",
        "pytest tests/test_loop_acks.py -k closing_the_bot",
        open_questions=OPEN_QUESTIONS,
        rechecked_before_close=job.done,
        worker_restarted_after_close=int(restarted),
    )


async def test_a_question_left_in_a_stopped_process_spool_is_answered_once_on_start(
    settings: Settings,
) -> None:
    """A process that acknowledged a question and died before moving it from its spool into
    the database: the next one to start answers it, late, once."""
    db = Path(settings.db_path)
    Storage.open(db).close()  # the database exists, as the stopped process left it
    dead = ReceivedSpool.beside(db, "0123456789abcdef")  # no lock file: not running
    asked_at = datetime.now(UTC) - timedelta(minutes=1)
    await dead.keep(
        {
            "platform": "slack",
            "key": "event:EvSPOOLED",
            "kind": "dm",
            "user_id": "U42",
            "conversation": "D42",
            "text": QUESTIONS[0],
            "received_at": asked_at.isoformat(timespec="milliseconds"),
            "taken_by": dead.token,
        }
    )
    async with fake_slack_api() as api, slack_server(settings, api=api, on_disk=True) as slack:
        (late,) = await api.wait_for("chat.postMessage")
        assert late["channel"] == "D42" and str(late["text"]).startswith(f"{messages.LATE}: ")
        # Slack's retry of it, reaching the new process, is not answered again.
        await slack.event(dm(QUESTIONS[0], channel="D42", user="U42"), event_id="EvSPOOLED")
        await slack.dm("can I post on linkedin?", user="U43")  # a later question, answered
        posts = await api.wait_for("chat.postMessage", 2)
        assert sorted(str(p["channel"]) for p in posts) == ["D42", "D43"]
        logged = [row.text for row in slack.bot.storage.questions(status=None)]
        assert logged.count(QUESTIONS[0]) == 1
    assert dead.folder is not None and not list(dead.folder.glob(f"{dead.token}.*"))
