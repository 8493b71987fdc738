"""Faults: the process killed in the middle of a policy upload, a full disk, a read-only
database. The active policy stays whole, the bot keeps answering, no question is lost.

LLM faults (down, slow, garbage, 429) are covered by tests/test_llm_client.py and
tests/test_llm_grounded.py; docs/reliability.md lists them with these.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict

import aiohttp
import pytest
from click.testing import CliRunner

from adapters.server import build_app
from bot.cli import main
from bot.config import Settings
from bot.core import PolicyBot
from bot.store.database import Storage
from tests.conftest import ROOT
from tests.fakes.bot_connector import connector_stub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.teams_activities import message
from tests.fakes.teams_harness import local_teams, turns_finished
from tests.reliability import record

SECTIONS = 250


def large_policy() -> str:
    """A generated policy of SECTIONS sections, two clauses each: an upload that takes a
    while to store, so there is a middle to be killed in."""
    parts = ["# Generated Communication Policy", "", "Version: load-test", ""]
    for n in range(1, SECTIONS + 1):
        parts += [
            f"## {n}. Topic number {n}",
            "",
            f"Employees must not post material about internal project {n} on any public "
            f"social network without written approval from the owner of project {n}.",
            "",
            f"- Questions about project {n} go to the communications team, who answer within "
            "two working days and record the decision for later reference.",
            "",
        ]
    return "\n".join(parts)


class Snapshot(TypedDict):
    active: list[tuple[str, int, int]]  # (document, version id, clause count)
    half_versions: list[int]
    fts_in_step: bool
    orphan_clauses: int
    integrity: str


def snapshot(db: Path) -> Snapshot:
    """What must survive a crash: the active versions, whole versions only (each with all
    its clauses, searchable), a sound database file."""
    storage = Storage.open(db)
    try:
        conn = storage.db.conn
        stored = dict(
            conn.execute("SELECT version_id, count(*) FROM clauses GROUP BY version_id").fetchall()
        )
        return {
            "active": [(v.document, v.id, v.clause_count) for v in storage.active_versions()],
            "half_versions": [
                v.id for v in storage.versions() if stored.get(v.id, 0) != v.clause_count
            ],
            "fts_in_step": conn.execute("SELECT count(*) FROM clauses_fts").fetchone()[0]
            == storage.total_clause_count(),
            "orphan_clauses": conn.execute(
                "SELECT count(*) FROM clauses WHERE version_id NOT IN (SELECT id FROM versions)"
            ).fetchone()[0],
            "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
        }
    finally:
        storage.close()


#: Where the upload is killed: (what the statement is, its pattern, which occurrence).
KILL_POINTS = [
    ("at the first clause", r"INSERT INTO clauses \(", 1),
    ("half way through the clauses", r"INSERT INTO clauses \(", SECTIONS),
    ("just before the upload commits", r"^COMMIT", 1),
    ("between retiring the old version and activating the new", r"SET status = 'active'", 1),
]


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("upload") / "generated-policy.md"
    path.write_text(large_policy(), encoding="utf-8")
    return path


def killed_policybot(*args: str, kill_at: tuple[str, int]) -> subprocess.CompletedProcess[str]:
    """`policybot ARGS` in a process of its own, SIGKILLed at the chosen statement."""
    prefix = ["-m", "tests.fakes.killed_upload", kill_at[0], str(kill_at[1])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *prefix, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize("where,pattern,nth", KILL_POINTS, ids=[k[0] for k in KILL_POINTS])
def test_sigkill_during_a_policy_upload_leaves_the_previous_version_whole(
    tmp_path: Path, policy_file: Path, where: str, pattern: str, nth: int
) -> None:
    db = tmp_path / "policybot.db"
    bot = PolicyBot.create(Settings(db_path=str(db)))
    (document,) = {v.document for v in bot.ensure_policy()}
    bot.storage.close()
    before = snapshot(db)
    assert before["half_versions"] == [] and before["integrity"] == "ok"
    upload = ("--db", str(db), "policy", "load", str(policy_file), "--name", document)

    killed = killed_policybot(*upload, kill_at=(pattern, nth))
    assert killed.returncode == -9, killed.stderr  # really killed, mid-upload

    after = snapshot(db)
    assert after == before  # no half version, the active one untouched, FTS in step
    # Restarted, the bot answers from the previous version, and the same upload goes through.
    runner = CliRunner()
    asked = runner.invoke(main, ["--db", str(db), "ask", "--json", "may I share our roadmap?"])
    assert asked.exit_code == 0 and json.loads(asked.output)["answered"]
    loaded = runner.invoke(main, list(upload))
    assert loaded.exit_code == 0, loaded.output
    final = snapshot(db)
    assert final["integrity"] == "ok" and final["orphan_clauses"] == 0
    assert final["half_versions"] == [] and final["fts_in_step"]
    ((name, _, clause_count),) = final["active"]
    assert name == document and clause_count >= 2 * SECTIONS
    record(
        "Faults: SIGKILL during `policybot policy load`",
        "pytest tests/test_reliability_faults.py -k sigkill",
        faults_injected=1,
        clauses_per_upload=str(clause_count),
        half_versions_visible=0,
        failures=0,
    )


# -- a full disk and a read-only database -----------------------------------------------------
def fill_disk(storage: Storage) -> None:
    """Let the database grow no further (SQLite's max_page_count), then fill what is left,
    as a disk that filled up would."""
    conn = storage.db.conn
    conn.execute("CREATE TABLE ballast (junk BLOB)")
    conn.commit()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    for size in (4096, 512, 64, 8, 1):
        try:
            while True:
                conn.execute("INSERT INTO ballast VALUES (zeroblob(?))", [size])
                conn.commit()
        except sqlite3.OperationalError as error:
            assert "full" in str(error)
            conn.rollback()


def make_read_only(storage: Storage) -> None:
    """What a read-only file, folder or mount looks like to SQLite: every write refused."""
    storage.db.conn.execute("PRAGMA query_only = ON")


def free_again(storage: Storage) -> None:
    conn = storage.db.conn
    conn.execute("PRAGMA query_only = OFF")
    conn.execute("PRAGMA max_page_count = 1073741823")


@pytest.fixture
def file_bot(tmp_path: Path) -> Iterator[PolicyBot]:
    bot = PolicyBot.create(local_teams(Settings(db_path=str(tmp_path / "policybot.db"))))
    bot.ensure_policy()
    yield bot
    bot.storage.close()


ASKED = [
    "may I share our unreleased roadmap on LinkedIn?",
    "what time does the cafeteria open?",
    "can I post pictures from the team offsite on instagram?",
    "may I tweet about our quarterly revenue?",
] * 3


@pytest.mark.parametrize("fault", [fill_disk, make_read_only], ids=["disk-full", "read-only"])
async def test_a_database_that_refuses_writes_still_answers_and_loses_no_question(
    file_bot: PolicyBot, fault: Callable[[Storage], None], caplog: pytest.LogCaptureFixture
) -> None:
    bot = file_bot
    caplog.set_level(logging.ERROR, logger="bot.store.unlogged")
    fault(bot.storage)
    async with (
        connector_stub() as stub,
        serving(build_app(bot, host=LOOPBACK)) as base,
        aiohttp.ClientSession() as session,
    ):
        for n, text in enumerate(ASKED):
            async with session.post(
                base + "/api/messages", json=message(f"{text} #{n}", stub.url)
            ) as response:
                assert response.status in (200, 201, 202)
        await turns_finished()  # each answered after its acknowledgement, in a task
        calls = await stub.received(len(ASKED))
        assert all(call.card is not None for call in calls)  # every question answered
        async with session.get(base + "/healthz") as response:
            health = await response.json()
        kept = health["unlogged_questions"]
        logged_during = len(bot.storage.questions(status=None))
        assert kept >= 1 and kept + logged_during == len(ASKED)
        assert health["ok"] is True  # the server is up: no crash, no crash loop
        reported = [r for r in caplog.records if "NOT logged" in r.getMessage()]
        assert len(reported) == kept
        spool = Path(bot.settings.db_path + ".unlogged.jsonl")
        assert spool.exists()

        free_again(bot.storage)  # space freed, permissions fixed
        async with session.post(
            base + "/api/messages", json=message("may I tweet about our revenue?", stub.url)
        ) as response:
            assert response.status in (200, 201, 202)
        await turns_finished()
        await stub.received(len(ASKED) + 1)
        async with session.get(base + "/healthz") as response:
            assert (await response.json())["unlogged_questions"] == 0
    texts = [q.text for q in bot.storage.questions(status=None)]
    assert sorted(texts) == sorted(
        [f"{t} #{n}" for n, t in enumerate(ASKED)] + ["may I tweet about our revenue?"]
    )
    assert not spool.exists()
    # Kept questions the policy did not cover went onto the review list once logged.
    open_texts = {q.text for q in bot.open_questions()}
    assert {f"{t} #{n}" for n, t in enumerate(ASKED) if "cafeteria" in t} <= open_texts
    record(
        f"Faults: {'disk full' if fault is fill_disk else 'read-only database'} while serving",
        "pytest tests/test_reliability_faults.py -k refuses_writes",
        requests=len(ASKED) + 1,
        answered=sum(1 for call in stub.calls if call.card is not None),
        writes_refused=kept,
        kept_then_logged=kept,
        lost=0,
        failures=0,
    )
