"""Load on loopback: many people asking at once through the real `serve` app.

Every question gets exactly one answer, every question is in the log, and the database never
says "locked", while an admin uploads and activates policy versions from another connection
(as `policybot policy load` does next to a running server). Latencies are reported in
docs/reliability.md, never asserted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from adapters.server import build_app
from bot.config import Settings
from bot.core import PolicyBot
from bot.policies import PolicyLibrary
from bot.store.database import Storage
from tests.fakes.bot_connector import ConnectorStub, connector_stub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.teams_activities import PERSONAL, message
from tests.fakes.teams_harness import local_teams
from tests.reliability import percentiles, record

#: Bounded by count, not time: enough to overlap many turns, a few seconds at most.
ASKERS = 40
QUESTIONS_EACH = 5
CONCURRENCY = 40

QUESTIONS = [
    "may I share our unreleased roadmap on LinkedIn?",
    "can I post pictures from the team offsite on instagram?",
    "what time does the cafeteria open?",
    "may I tweet about our quarterly revenue?",
    "can I friend my manager on facebook?",
    "is it ok to reply to a journalist on twitter?",
    "may I expense a linkedin premium subscription?",
]


def numbered(asker: int, turn: int) -> str:
    """A question each asker asks once, told apart in the log by its ticket number."""
    return f"{QUESTIONS[(asker + turn) % len(QUESTIONS)]} (ticket {asker}-{turn})"


class AdminWriter(threading.Thread):
    """Uploads and activates policy versions through its own connection while the server is
    busy: the second writer a real deployment has (`policybot policy load`)."""

    def __init__(self, db_path: str, policy_text: str, versions: int) -> None:
        super().__init__(daemon=True)
        self.db_path = db_path
        self.policy_text = policy_text
        self.versions = versions
        self.done = 0
        self.errors: list[BaseException] = []
        self.go = threading.Event()

    def run(self) -> None:
        storage = Storage.open(self.db_path)
        try:
            library = PolicyLibrary(storage, 10 * 2**20)
            self.go.wait(10)
            for n in range(self.versions):
                text = self.policy_text + f"\n\n## 99. Appendix\n\nRevision {n} of this policy.\n"
                library.upload(
                    "social-media-and-electronic-communication.md",
                    text.encode(),
                    activate=True,
                    uploaded_by="load-test",
                )
                self.done += 1
        except BaseException as error:  # reported to the test, which fails on it
            self.errors.append(error)
        finally:
            storage.close()


@pytest.fixture
def file_bot(tmp_path: Path) -> PolicyBot:
    bot = PolicyBot.create(local_teams(Settings(db_path=str(tmp_path / "load.db"))))
    bot.ensure_policy()
    return bot


def locked_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if "locked" in r.getMessage().lower() or (r.exc_text and "locked" in r.exc_text)
    ]


async def test_many_teams_askers_at_once_each_get_one_answer_and_are_all_logged(
    file_bot: PolicyBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    bot = file_bot
    policy_text = (
        bot.settings.policies_dir / (bot.storage.active_versions()[0].source_name)
    ).read_text(encoding="utf-8")
    writer = AdminWriter(bot.settings.db_path, policy_text, versions=6)
    writer.start()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    sent_ids: list[str] = []
    limit = asyncio.Semaphore(CONCURRENCY)
    try:
        async with (
            connector_stub() as stub,
            serving(build_app(bot, host=LOOPBACK)) as base,
            aiohttp.ClientSession() as session,
        ):

            async def ask(asker: int, turn: int) -> None:
                sender = {
                    "id": f"29:asker-{asker}",
                    "name": f"Asker {asker}",
                    "aadObjectId": f"aad-{asker}",
                }
                conversation = {**PERSONAL, "id": f"a:personal-{asker}"}
                activity = message(
                    numbered(asker, turn), stub.url, sender=sender, conversation=conversation
                )
                sent_ids.append(activity["id"])
                async with limit:
                    started = time.perf_counter()
                    async with session.post(base + "/api/messages", json=activity) as response:
                        await response.read()
                        statuses[response.status] += 1
                    latencies.append((time.perf_counter() - started) * 1000)

            writer.go.set()
            await asyncio.gather(*(ask(a, t) for a in range(ASKERS) for t in range(QUESTIONS_EACH)))
            answers = await answered_once(stub, sent_ids)
    finally:
        writer.go.set()
        await asyncio.to_thread(writer.join, 30)
        bot.storage.close()

    total = ASKERS * QUESTIONS_EACH
    assert set(statuses) <= {200, 201, 202}, statuses
    assert sorted(answers) == sorted(sent_ids)
    assert all(count == 1 for count in answers.values())
    logged = Storage.open(bot.settings.db_path)
    try:
        rows = logged.questions(status=None, limit=10 * total)
    finally:
        logged.close()
    texts = Counter(row.text for row in rows)
    assert texts == Counter(numbered(a, t) for a in range(ASKERS) for t in range(QUESTIONS_EACH))
    assert writer.errors == [] and writer.done == 6
    assert locked_errors(caplog) == []
    record(
        "Load: Teams `/api/messages`",
        "pytest tests/test_reliability_load.py -k teams",
        requests=total,
        askers=ASKERS,
        concurrency=CONCURRENCY,
        concurrent_policy_activations=writer.done,
        answered_once=sum(answers.values()),
        logged=len(rows),
        database_locked=0,
        failures=total - sum(answers.values()),
        **percentiles(latencies),
    )


async def answered_once(stub: ConnectorStub, sent_ids: list[str]) -> Counter[str]:
    """Final answers (an answer card, or the card that replaced a "Thinking…" placeholder)
    per incoming activity id, once every activity has one."""

    def count() -> Counter[str]:
        by_placeholder = {
            f"activity-{i + 1}": call.activity_id
            for i, call in enumerate(stub.calls)
            if call.method == "POST"
        }
        answers: Counter[str] = Counter()
        for call in stub.calls:
            if call.card is None:
                continue
            incoming = (
                call.activity_id
                if call.method == "POST"
                else by_placeholder.get(call.activity_id, "")
            )
            answers[incoming] += 1
        return answers

    async with asyncio.timeout(30):  # a hang guard, not a speed requirement
        while len(count()) < len(sent_ids):
            await stub.received(len(stub.calls) + 1)
    return count()
