"""The review loop from the command line, on a database the chat platforms also write to."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.store.database import Storage
from tests.fakes.outbound import RecordingNotifier

# One topic the policy does not cover, asked three ways.
PREMIUM = [
    "can I expense LinkedIn Premium?",
    "will the company reimburse my LinkedIn Premium subscription",
    "is LinkedIn premium something I can claim back on expenses",
]
ASKERS = [
    ("slack", "U1", "Dana Smith"),
    ("slack", "U2", "Lee Wong"),
    ("teams", "29:abc", "Sam Roe"),
]


class Platforms:
    """What Slack and Teams do to the database between CLI commands: log questions."""

    def __init__(self, db: str) -> None:
        self.db = db

    def bot(self) -> PolicyBot:
        bot = PolicyBot.create(Settings(db_path=self.db), storage=Storage.open(self.db))
        bot.ensure_policy()
        return bot

    def ask(self, questions: list[tuple[str, tuple[str, str, str]]]) -> list[int]:
        bot = self.bot()
        ids = []
        for text, (platform, user, name) in questions:
            answer = asyncio.run(
                bot.ask(IncomingQuestion(text, platform, user, f"conv-{user}", name))
            )
            assert answer.question_id is not None
            ids.append(answer.question_id)
        bot.storage.close()
        return ids


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "review.db")


def cli(db: str, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        main, ["--db", db, *args], input=stdin, env={"POLICYBOT_DB": "", **(env or {})}
    )


def test_done_when_three_paraphrases_group_answer_teaches_the_bot_and_reaches_askers(
    db: str,
) -> None:
    platforms = Platforms(db)
    platforms.ask(list(zip(PREMIUM, ASKERS, strict=True)))
    platforms.ask([("what time does the cafeteria close", ("slack", "U7", "Kim"))])

    listed = cli(db, "questions", "list", "--groups", "--json")
    assert listed.exit_code == 0, listed.output
    groups = [json.loads(line) for line in listed.output.splitlines()]
    assert [g["count"] for g in groups] == [3, 1]
    premium = groups[0]
    assert premium["sample"] == PREMIUM[0] and premium["owner"] and premium["section"]
    per_question = cli(db, "questions", "list", "--json").output.splitlines()
    assert len(per_question) == 4  # scripts' view: one open question per line, as before
    table = cli(db, "questions", "list")
    assert " 3 " in table.output and PREMIUM[0] in table.output

    answer_text = "LinkedIn Premium is reimbursed for recruiters only; claim it as Subscriptions."
    answered = cli(db, "questions", "answer", str(premium["id"]), answer_text, "--by", "pr-team")
    assert answered.exit_code == 0, answered.output
    # The CLI has no Slack or Teams connection: the three deliveries wait for the adapters.
    assert "0 sent, 3 pending" in answered.output
    assert "2 on slack" in answered.output and "1 on teams" in answered.output

    fourth = cli(db, "ask", "--json", "Does Brightwater pay back a LinkedIn premium membership?")
    reply = json.loads(fourth.output)
    assert reply["answered"] and reply["source"] == "reviewed"
    assert answer_text in reply["text"]
    assert cli(db, "questions", "list", "--groups", "--json").output.count('"count": 1') == 1

    # The platforms come up with their notifiers: each of the three askers is sent the answer.
    bot = platforms.bot()
    slack, teams = RecordingNotifier(), RecordingNotifier()
    bot.notifiers.update({"slack": slack, "teams": teams})
    report = asyncio.run(bot.deliver_answers())
    assert (report.sent, report.pending) == (3, 0)
    sent = [(a.platform, a.user_id, a.conversation, text) for a, text in slack.sent + teams.sent]
    assert [s[:3] for s in sent] == [
        ("slack", "U1", "conv-U1"),
        ("slack", "U2", "conv-U2"),
        ("teams", "29:abc", "conv-29:abc"),
    ]
    for (_, _, _, text), question in zip(sent, PREMIUM, strict=True):
        assert answer_text in text and question in text
    bot.storage.close()
    shown = cli(db, "questions", "show", str(premium["id"]))
    assert "answered" in shown.output and answer_text in shown.output


def test_owner_queue_and_question_views(db: str) -> None:
    Platforms(db).ask(
        [
            ("can I bring my dog to the office", ("slack", "U1", "Dana")),
            ("can I friend my boss on facebook?", ("slack", "U2", "Lee")),
        ]
    )
    groups = [
        json.loads(x)
        for x in cli(db, "questions", "list", "--groups", "--json").output.splitlines()
    ]
    owner = groups[0]["owner"]
    mine = cli(db, "questions", "list", "--groups", "--json", "--owner", owner).output.splitlines()
    assert [json.loads(x)["owner"] for x in mine] == [owner]
    every = cli(db, "questions", "list", "--status", "all", "--json").output.splitlines()
    assert len(every) == 2 and all(json.loads(x)["asker"].startswith("asker-") for x in every)
    assert "Dana" not in cli(db, "questions", "list", "--questions").output
    named = cli(db, "questions", "list", "--questions", env={"POLICYBOT_SHOW_ASKERS": "1"})
    assert "Dana" in named.output
    wrong = cli(db, "questions", "list", "--groups", "--status", "refused")
    assert wrong.exit_code == 2 and "--questions" in wrong.output


def test_answer_and_dismiss_refuse_bad_input(db: str) -> None:
    Platforms(db).ask([("can I bring my dog to the office", ("slack", "U1", "Dana"))])
    assert cli(db, "questions", "answer", "42", "text").exit_code == 2
    empty = cli(db, "questions", "answer", "1", "   ")
    assert empty.exit_code == 2 and "empty" in empty.output
    from_stdin = cli(db, "questions", "answer", "1", "-", stdin="Only assistance dogs.\n")
    assert from_stdin.exit_code == 0 and "1 pending" in from_stdin.output
    missing = cli(db, "questions", "dismiss", "42")
    assert missing.exit_code == 2 and "no question group 42" in missing.output


def test_dismiss_from_the_cli(db: str) -> None:
    Platforms(db).ask([("what time does the cafeteria close", ("slack", "U1", "Dana"))])
    result = cli(db, "questions", "dismiss", "1")
    assert result.exit_code == 0 and "dismissed" in result.output
    assert cli(db, "questions", "list", "--groups", "--json").output == ""
    assert "dismissed" in cli(db, "questions", "list", "--status", "dismissed", "--groups").output


def test_export_csv_and_json_with_filters(db: str) -> None:
    platforms = Platforms(db)
    ids = platforms.ask(
        [
            ("may I share our unreleased roadmap on LinkedIn?", ("slack", "U1", "Dana")),
            ('=HYPERLINK("http://x") can I bring my dog to the office', ("teams", "U2", "Lee")),
            ("what time does the cafeteria close", ("slack", "U3", "Kim")),
        ]
    )
    bot = platforms.bot()
    bot.storage.update_question(ids[2], asked_at="2024-03-01T10:00:00+00:00")
    bot.storage.close()

    as_json = cli(db, "questions", "export", "--format", "json")
    rows = json.loads(as_json.output)
    assert [r["id"] for r in rows] == [ids[2], ids[0], ids[1]]  # oldest first
    assert rows[1]["cited_sections"].startswith("3.3") and rows[1]["owner"] == "Legal"
    assert all(r["asker"].startswith("asker-") for r in rows)

    opened = json.loads(
        cli(db, "questions", "export", "--format", "json", "--status", "open").output
    )
    assert {r["id"] for r in opened} == {ids[1], ids[2]}
    legal = json.loads(
        cli(db, "questions", "export", "--format", "json", "--owner", "legal").output
    )
    assert [r["id"] for r in legal] == [ids[0]]
    dated = cli(
        db,
        "questions",
        "export",
        "--format",
        "json",
        "--since",
        "2024-02-01",
        "--until",
        "2024-03-01",
    )
    assert [r["id"] for r in json.loads(dated.output)] == [ids[2]]

    table = list(csv.DictReader(io.StringIO(cli(db, "questions", "export").output)))
    assert [int(r["id"]) for r in table] == [ids[2], ids[0], ids[1]]
    assert table[2]["text"].startswith("'=HYPERLINK")  # a formula is not run by a spreadsheet
    named = cli(db, "questions", "export", "--format", "csv", env={"POLICYBOT_SHOW_ASKERS": "1"})
    assert "Dana" in named.output

    bad = cli(db, "questions", "export", "--since", "last tuesday")
    assert bad.exit_code == 2 and "2025-03-31" in bad.output


def test_export_to_a_file(db: str, tmp_path: Path) -> None:
    Platforms(db).ask([("what time does the cafeteria close", ("slack", "U1", "Dana"))])
    out = tmp_path / "log.csv"
    result = cli(db, "questions", "export", "-o", str(out))
    assert result.exit_code == 0 and "1 question written" in result.output
    assert "cafeteria" in out.read_text()


def test_purge_older_than(db: str) -> None:
    platforms = Platforms(db)
    ids = platforms.ask(
        [
            ("what time does the cafeteria close", ("slack", "U1", "Dana")),
            ("can I bring my dog to the office", ("slack", "U2", "Lee")),
        ]
    )
    bot = platforms.bot()
    stale = (datetime.now(UTC) - timedelta(days=200)).isoformat(timespec="seconds")
    bot.storage.update_question(ids[0], asked_at=stale)
    bot.storage.close()

    dry = cli(db, "questions", "purge", "--older-than", "180d", "--dry-run")
    assert dry.exit_code == 0 and "Would delete 1 question asked" in dry.output
    declined = cli(db, "questions", "purge", "--older-than", "180d", stdin="n\n")
    assert declined.exit_code == 1
    done = cli(db, "questions", "purge", "--older-than", "180d", "--yes")
    assert done.exit_code == 0 and "Deleted 1 question asked" in done.output
    left = cli(db, "questions", "list", "--status", "all", "--json").output.splitlines()
    assert [json.loads(x)["id"] for x in left] == [ids[1]]
    bad = cli(db, "questions", "purge", "--older-than", "soon", "--yes")
    assert bad.exit_code == 2 and "180d" in bad.output


def test_digest_prints_and_says_where_it_could_not_post(db: str) -> None:
    Platforms(db).ask(
        [
            ("can I bring my dog to the office", ("slack", "U1", "Dana")),
            ("are pets allowed at the office?", ("slack", "U2", "Lee")),
        ]
    )
    result = cli(db, "digest", env={"POLICYBOT_DIGEST_SLACK_CHANNEL": "C-policy"})
    assert result.exit_code == 0
    assert "weekly digest" in result.output and "2 asked" in result.output
    assert "POLICYBOT_DIGEST_SLACK_CHANNEL is set" in result.output
    data = json.loads(cli(db, "digest", "--json", "--no-post").output)
    assert data["asked"] == 2 and data["top_groups"][0]["count"] == 2
