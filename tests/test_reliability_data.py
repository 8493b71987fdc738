"""Data and bad questions: what the policy team sees never names an asker, a backup restored
by copying it over the database works, and empty, huge or control-character questions through
every platform get a clear message with nothing lost."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from adapters.replies import APOLOGY
from adapters.server import build_app
from bot.cli import main
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from tests.conftest import ROOT
from tests.fakes.bot_connector import connector_stub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.slack_harness import slack_server
from tests.fakes.teams_activities import message
from tests.fakes.teams_harness import local_teams
from tests.reliability import record

TEAMS_USER = {
    "id": "29:1f-very-private-teams-id",
    "name": "Jane Private",
    "aadObjectId": "aad-jane-private-object-id",
}
SLACK_USER = "U0PRIVATE9"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return local_teams(settings)


async def test_the_policy_team_never_sees_who_asked(settings: Settings) -> None:
    db = Path(settings.db_path)
    bot = PolicyBot.create(settings)
    bot.ensure_policy()
    async with (
        connector_stub() as stub,
        serving(build_app(bot, host=LOOPBACK)) as base,
        aiohttp.ClientSession() as session,
    ):
        for text in ("what time does the cafeteria open?", "may I tweet about revenue?"):
            async with session.post(
                base + "/api/messages", json=message(text, stub.url, sender=TEAMS_USER)
            ) as response:
                assert response.status in (200, 201, 202)
        await stub.received(2)
    bot.storage.close()
    async with slack_server(settings) as slack:
        await slack.dm("may I bring my dog to the office?", user=SLACK_USER)
        await slack.api.wait_for("chat.postMessage")
        slack.bot.storage.backup(db.with_name("slack.db"))
    runner = CliRunner()
    outputs = []
    for database in (db, db.with_name("slack.db")):
        for args in (
            ["questions", "list", "--status", "all", "--json"],
            ["questions", "list"],
            ["questions", "export", "--format", "csv"],
            ["questions", "export", "--format", "json"],
        ):
            result = runner.invoke(main, ["--db", str(database), *args])
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
    seen = "\n".join(outputs)
    assert "asker-" in seen  # askers are there, as pseudonyms
    for private in ("1f-very-private-teams-id", "aad-jane", "Jane Private", SLACK_USER):
        assert private not in seen
    record(
        "Data: askers pseudonymized in `questions list` and `export`",
        "pytest tests/test_reliability_data.py -k never_sees",
        views_checked=len(outputs),
        platform_ids_shown=0,
        failures=0,
    )


async def test_a_backup_restored_by_copying_it_over_the_database_works(tmp_path: Path) -> None:
    live = tmp_path / "policybot.db"
    backup = tmp_path / "backup.db"
    bot = PolicyBot.create(Settings(db_path=str(live)))
    bot.ensure_policy()
    await bot.ask(IncomingQuestion("may I tweet about revenue?"))
    # `policybot backup` while the bot is running (another process, as in production).
    made = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", str(live), "backup", str(backup)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    await bot.ask(IncomingQuestion("what time does the cafeteria open?"))
    bot.storage.close()  # the bot is stopped; then the database is lost
    live.write_bytes(b"this is not a database any more")
    runner = CliRunner()
    broken = runner.invoke(main, ["--db", str(live), "questions", "list", "--status", "all"])
    assert broken.exit_code == 4 and "Cannot use the database" in broken.output

    # The documented restore (README): with the bot stopped, copy the backup over the
    # database and delete the old write-ahead log beside it, which belongs to the old file.
    shutil.copyfile(backup, live)
    for leftover in (Path(f"{live}-wal"), Path(f"{live}-shm")):
        leftover.unlink(missing_ok=True)
    listed = runner.invoke(
        main, ["--db", str(live), "questions", "list", "--status", "all", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["text"] for line in listed.output.splitlines()] == [
        "may I tweet about revenue?"
    ]
    restored = PolicyBot.create(Settings(db_path=str(live)))
    # The restored policy answers: its clauses are cited (as the answer, or as the closest
    # ones when the coverage model is unsure a cited clause is the one asked about).
    reply = await restored.ask(IncomingQuestion("may I tweet about revenue?"))
    assert reply.outcome.cites and reply.citations
    assert len(restored.storage.questions(status=None)) == 2
    restored.storage.close()
    record(
        "Data: `policybot backup` while serving, restore by copying the file back",
        "pytest tests/test_reliability_data.py -k restored",
        backups=1,
        restores=1,
        questions_recovered=1,
        failures=0,
    )


BAD_QUESTIONS = {
    "empty": "",
    "spaces": "   \t  ",
    "control characters only": "\x00\x01\x07\x1b",
    "huge": "may I post this? " * 2000,
}


@pytest.mark.parametrize("kind", list(BAD_QUESTIONS))
async def test_bad_questions_through_every_platform_get_a_clear_message(
    settings: Settings, kind: str
) -> None:
    text = BAD_QUESTIONS[kind]
    replies = []
    bot = PolicyBot.create(settings)
    bot.ensure_policy()
    async with (
        connector_stub() as stub,
        serving(build_app(bot, host=LOOPBACK)) as base,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(base + "/api/messages", json=message(text, stub.url)) as response:
            assert response.status in (200, 201, 202)
        (reply,) = await stub.received(1)
        replies.append(reply.text)
    teams_logged = bot.storage.questions(status=None)
    bot.storage.close()
    async with slack_server(settings) as slack:
        await slack.command(text)
        await slack.dm(text or " ")
        posts = await slack.api.wait_for("chat.postMessage")
        replies.append(posts[0]["text"])
        if text.strip(" \t"):
            (command_reply,) = await slack.api.wait_for("response_url:command")
            replies.append(command_reply["text"])
        slack_logged = slack.bot.storage.questions(status=None)
    cli_db = str(Path(settings.db_path).with_name("cli.db"))
    # In a thread: `ask` runs its own event loop.
    cli = await asyncio.to_thread(CliRunner().invoke, main, ["--db", cli_db, "ask", text])
    replies.append(cli.output)
    assert all(reply.strip() for reply in replies), replies
    if kind == "huge":
        assert all("characters long" in reply for reply in replies)
        assert cli.exit_code == 1
        # A refused question is still logged (cut to the limit), so nothing is lost.
        assert [q.status for q in teams_logged] == ["refused"]
        assert {q.status for q in slack_logged} == {"refused"}
    else:
        assert teams_logged == [] and slack_logged == []
    record(
        "Bad input: empty, blank, control-character and huge questions (Teams, Slack, CLI)",
        "pytest tests/test_reliability_data.py -k bad_questions",
        inputs_tried=len(replies),
        clear_messages=len(replies),
        failures=0,
    )


#: A lone surrogate, as Slack's and Teams' JSON may carry it ("\ud800" is valid JSON).
SURROGATE_QUESTION = "may I post photos from the offsite \ud800 on instagram?"
#: How it is answered and logged: the surrogate as U+FFFD, the rest as asked.
SURROGATE_LOGGED = "may I post photos from the offsite \ufffd on instagram?"


async def test_a_lone_surrogate_is_answered_logged_and_spooled(settings: Settings) -> None:
    answered = logged = spooled = 0
    bot = PolicyBot.create(settings)
    bot.ensure_policy()
    body = json.dumps(message(SURROGATE_QUESTION, "http://unused"))
    assert "\\ud800" in body  # sent escaped, as a platform sends it
    async with (
        connector_stub() as stub,
        serving(build_app(bot, host=LOOPBACK)) as base,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(
            base + "/api/messages", json=message(SURROGATE_QUESTION, stub.url)
        ) as response:
            assert response.status in (200, 201, 202)
        (reply,) = await stub.received(1)
        assert reply.card is not None and APOLOGY not in reply.text
        answered += 1
        # With the database refusing writes the question goes to the spool file, and from
        # there into the log once writes are taken again.
        bot.storage.db.conn.execute("PRAGMA query_only = ON")
        async with session.post(
            base + "/api/messages", json=message(SURROGATE_QUESTION, stub.url)
        ) as response:
            assert response.status in (200, 201, 202)
        (_, spooled_reply) = await stub.received(2)
        assert spooled_reply.card is not None and APOLOGY not in spooled_reply.text
        answered += 1
        spool = Path(settings.db_path + ".unlogged.jsonl")
        (kept,) = [json.loads(line) for line in spool.read_text(encoding="utf-8").splitlines()]
        assert kept["record"]["text"] == SURROGATE_LOGGED
        spooled += 1
        bot.storage.db.conn.execute("PRAGMA query_only = OFF")
        async with session.post(
            base + "/api/messages", json=message("may I tweet about revenue?", stub.url)
        ) as response:
            assert response.status in (200, 201, 202)
        await stub.received(3)
    teams_texts = [q.text for q in bot.storage.questions(status=None)]
    assert sorted(teams_texts) == sorted([SURROGATE_LOGGED] * 2 + ["may I tweet about revenue?"])
    assert not spool.exists()
    logged += 2
    bot.storage.close()

    async with slack_server(settings) as slack:
        await slack.dm(SURROGATE_QUESTION)  # signed JSON, the surrogate escaped
        (post,) = await slack.api.wait_for("chat.postMessage")
        assert APOLOGY not in post["text"] and "9.2" in json.dumps(post)
        answered += 1
        slack_texts = [q.text for q in slack.bot.storage.questions(status=None)]
        assert slack_texts == [SURROGATE_LOGGED]
        logged += 1

    cli_db = Path(settings.db_path).with_name("cli.db")
    # A terminal's bytes that are not UTF-8 reach argv as lone surrogates too.
    cli = await asyncio.to_thread(
        CliRunner().invoke, main, ["--db", str(cli_db), "ask", SURROGATE_QUESTION]
    )
    assert cli.exit_code == 0, cli.output
    assert "9.2" in cli.output and APOLOGY not in cli.output
    answered += 1
    listed = CliRunner().invoke(
        main, ["--db", str(cli_db), "questions", "list", "--status", "all", "--json"]
    )
    assert [json.loads(line)["text"] for line in listed.output.splitlines()] == [SURROGATE_LOGGED]
    logged += 1
    record(
        "Bad input: a lone surrogate (\\ud800) in a question (Teams, Slack, CLI)",
        "pytest tests/test_reliability_data.py -k lone_surrogate",
        questions=4,
        answered=answered,
        logged=logged,
        spooled_then_logged=spooled,
        apologies=0,
        failures=0,
    )
