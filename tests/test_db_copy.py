"""`policybot db copy`: a SQLite deployment moved into PostgreSQL (the throwaway cluster of
tests/postgres.py). Every table the migrations made is copied with its ids, the copy answers
as the original did and delivers what was pending, and every refusal is clear, writes nothing
and never shows the URL's password."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.notify import LateReply, ReplyAddress
from bot.store.database import Storage
from bot.store.liveness import ProcessMark
from bot.store.vectors import ClauseVector
from tests.conftest import LIVESTREAM_POLICY, PHONES_POLICY
from tests.postgres import Cluster
from tests.reliability import record

PASSWORD = "copy-Secret-7d1e"
PREMIUM = "can I expense LinkedIn Premium?"
REVIEWED = "Yes, up to 30 USD a month; file it under training."
TWEET = "can I tweet about our quarterly revenue?"
COVERED = "may I read work email on my personal phone?"
CHECK = "Copying a SQLite database into PostgreSQL"
COMMAND = "pytest tests/test_db_copy.py"


def own_tables(path: Path) -> dict[str, int]:
    """Every table of a SQLite file but SQLite's own, the migrations' record and the
    full-text index (virtual, with its shadow tables): table -> rows. Read from the file's
    schema, so a table a future migration adds is in it."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        virtual = [n for n, sql in rows if sql.upper().startswith("CREATE VIRTUAL")]
        names = [
            n
            for n, _ in rows
            if not n.startswith("sqlite_")
            and n != "_sqlite_migrations"
            and not any(n == v or n.startswith(f"{v}_") for v in virtual)
        ]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def postgres_counts(url: str, tables: list[str]) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return {
            t: conn.execute(f'SELECT count(*) FROM "{t}"'.encode()).fetchone()[0]  # type: ignore[index]
            for t in tables
        }


def postgres_tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return [str(r[0]) for r in rows]


class Sent:
    """Stands in for a platform's Notifier: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.messages: list[tuple[ReplyAddress, str]] = []

    async def send(self, address: ReplyAddress, text: str) -> None:
        self.messages.append((address, text))


class LateSent:
    """Stands in for a platform's LateReplier."""

    def __init__(self) -> None:
        self.replies: list[LateReply] = []

    async def send(self, reply: LateReply) -> None:
        self.replies.append(reply)


def settings_on(location: str, tmp_path: Path) -> Settings:
    return Settings(db_path=str(tmp_path / "unused.db"), retriever="lexical").with_db(location)


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """A SQLite deployment with rows in every table: the bundled policy and a document with
    two versions, rolled back once and a third staged; questions answered and not, with
    reply addresses and names; a review group answered but not delivered; feedback; a
    handled event; a question acknowledged and never answered (its process stopped); a
    digest post; clause vectors; a Teams answer message; console sign-ins; the pseudonym key."""
    path = tmp_path / "vm" / "policybot.db"
    path.parent.mkdir()
    bot = PolicyBot.create(settings_on(str(path), tmp_path))
    try:
        bot.ensure_policy()
        for text in (PHONES_POLICY, LIVESTREAM_POLICY):
            bot.policies.upload("devices.md", text.encode(), activate=True)
        bot.policies.rollback("devices")
        bot.policies.upload("devices.md", (LIVESTREAM_POLICY + "\nDraft.\n").encode())
        answered = asyncio.run(
            bot.ask(IncomingQuestion(COVERED, "slack", "U100", "D100", asker_name="Ada"))
        )
        assert answered.question_id is not None
        bot.feedback(answered.question_id, helpful=True)
        bot.storage.remember_answer_message("teams", "a:chat", "m-1", answered.question_id)
        # The web console's sign-ins: a session, a one-time link and a sign-in under way.
        later = datetime.now(UTC) + timedelta(hours=1)
        bot.storage.create_console_session(
            "a" * 64, platform="slack", user_id="U100", name="Ada", via="link", expires_at=later
        )
        bot.storage.create_console_link(
            "b" * 64, platform="slack", user_id="U100", name="Ada", expires_at=later
        )
        bot.storage.start_console_sign_in(
            "c" * 64, provider="slack", browser_hash="d" * 64, expires_at=later
        )
        for n in range(3):
            asyncio.run(bot.ask(IncomingQuestion(PREMIUM, "slack", f"U{n:03d}", f"D{n:03d}")))
        (group,) = [g for g in bot.review.queue() if g.count == 3]
        bot.review.answer(group.id, REVIEWED, "reviewer")
        assert bot.claim_delivery("slack", "file:F1")
        left = IncomingQuestion(TWEET, "slack", "U9", "D9", conversation_key="D9/1700000000.9")
        bot.received.receive("slack", "event:EvLEFT", left, "dm")
        assert bot.storage.claim_digest("2026-W48:slack", "cron")
        bot.storage.digest_posted("2026-W48:slack", "cron", posted=True)
        version = bot.active_versions()[0]
        clause_ids = [stored.id for stored in bot.storage.clauses([version.id])][:3]
        bot.storage.save_clause_vectors(
            "test-model",
            [ClauseVector(c, f"{c:064x}", 2, bytes(range(8))) for c in clause_ids],
        )
    finally:
        asyncio.run(bot.aclose())
        bot.mark.release()
        bot.storage.close()
    return path


def copy(*args: str) -> Result:
    return CliRunner().invoke(main, ["db", "copy", *args], env={"DATABASE_URL": ""})


def with_password(url: str) -> str:
    # The throwaway cluster trusts every connection: a password in the URL is accepted and
    # ignored, and must show up nowhere.
    return url.replace("postgres@", f"postgres:{PASSWORD}@")


def test_the_deployment_has_rows_in_every_table(deployment: Path) -> None:
    """Fails when a migration adds a table this deployment leaves empty: give it rows above,
    so the copy tests below copy (and count) it too."""
    empty = [table for table, rows in own_tables(deployment).items() if rows == 0]
    assert not empty, f"tables with no rows in the deployment fixture: {empty}"


def test_a_copy_holds_every_table_answers_the_same_and_delivers_what_was_pending(
    deployment: Path, postgres_cluster: Cluster, tmp_path: Path
) -> None:
    url = postgres_cluster.empty_database()
    try:
        result = copy("--from", str(deployment), "--to", with_password(url))
        assert result.exit_code == 0, result.output
        assert PASSWORD not in result.output
        source = own_tables(deployment)
        assert postgres_counts(url, list(source)) == source  # every table, every row
        for table, rows in source.items():
            assert f"{table}: {rows}" in result.output

        original = PolicyBot.create(settings_on(str(deployment), tmp_path))
        moved = PolicyBot.create(settings_on(url, tmp_path))
        try:
            # The same question answered alike: the same clauses of the same versions.
            answers = [asyncio.run(b.ask(IncomingQuestion(COVERED))) for b in (original, moved)]
            assert [a.outcome for a in answers[:1]] == [answers[1].outcome]
            assert [[(c.document, c.section, c.text) for c in a.citations] for a in answers] == [
                [(c.document, c.section, c.text) for c in answers[0].citations]
            ] * 2
            assert answers[0].policy_version == answers[1].policy_version
            assert original.storage.pseudonym("slack", "U1") == moved.storage.pseudonym(
                "slack", "U1"
            )
            # A new row takes the id SQLite would give it, past the copied ones: the identity
            # sequences were moved on (left at 1, the insert would collide with a copied row).
            assert answers[1].question_id == answers[0].question_id
            # The reviewed answer reaches its three askers from PostgreSQL, once.
            notifier = Sent()
            moved.notifiers["slack"] = notifier
            report = asyncio.run(moved.deliver_answers())
            assert sorted(a.user_id for a, _ in notifier.messages) == ["U000", "U001", "U002"]
            assert all(REVIEWED in text for _, text in notifier.messages)
            asyncio.run(moved.deliver_answers())
            assert len(notifier.messages) == 3
            # The question acknowledged on the VM and never answered is answered now.
            late = LateSent()
            moved.late_repliers["slack"] = late
            assert asyncio.run(moved.answer_left_over()) == 1
            assert [r.question for r in late.replies] == [TWEET]
        finally:
            for b in (original, moved):
                asyncio.run(b.aclose())
                b.mark.release()
                b.storage.close()
        record(
            CHECK,
            COMMAND,
            tables_copied=len(source),
            rows_copied=sum(source.values()),
            tables_with_a_different_count=0,
            pending_answers_delivered=len(notifier.messages),
            failed_deliveries=report.failed,
            left_over_turns_finished=len(late.replies),
        )
    finally:
        postgres_cluster.drop(url)


def test_a_target_holding_rows_is_refused_and_left_as_it_was(
    deployment: Path, postgres_cluster: Cluster
) -> None:
    url = postgres_cluster.new_database()
    try:
        with closing(Storage.open(url)) as storage:
            storage.claim_delivery("slack", "event:Ev-already-there")
        before = postgres_counts(url, list(own_tables(deployment)))
        result = copy("--from", str(deployment), "--to", with_password(url))
        assert result.exit_code == 4, result.output
        assert "is not empty: handled_deliveries (1 rows)" in result.output
        assert "nothing was copied" in result.output
        assert PASSWORD not in result.output
        assert postgres_counts(url, list(before)) == before
        record(CHECK, COMMAND, non_empty_targets_refused=1, rows_written_to_them=0)
    finally:
        postgres_cluster.drop(url)


def test_a_failed_copy_leaves_the_target_empty_and_says_why(
    deployment: Path, postgres_cluster: Cluster
) -> None:
    """A value PostgreSQL will not take (a NUL in a text column, which SQLite keeps) fails the
    copy partway: the transaction is rolled back, so no table keeps the rows before it."""
    with closing(sqlite3.connect(deployment)) as conn:
        conn.execute("UPDATE questions SET notes = ? WHERE id = 1", ["bad\x00note"])
        conn.commit()
    url = postgres_cluster.empty_database()
    try:
        result = copy("--from", str(deployment), "--to", with_password(url))
        assert result.exit_code == 4, result.output
        assert "failed, so nothing was copied" in result.output
        assert PASSWORD not in result.output
        counts = postgres_counts(url, list(own_tables(deployment)))
        assert set(counts.values()) == {0}, counts
        record(CHECK, COMMAND, failed_copies_left_empty=1)
    finally:
        postgres_cluster.drop(url)


def test_a_running_process_on_the_sqlite_file_stops_the_copy(
    deployment: Path, postgres_cluster: Cluster
) -> None:
    running = ProcessMark.beside(deployment)
    running.hold()  # as `serve` does on start
    url = postgres_cluster.empty_database()
    try:
        result = copy("--from", str(deployment), "--to", url)
        assert result.exit_code == 4, result.output
        assert "still run on" in result.output and "Nothing was copied" in result.output
        assert postgres_tables(url) == []  # refused before even migrating it
    finally:
        running.release()
        postgres_cluster.drop(url)


def test_questions_a_killed_serve_left_in_its_spool_are_copied(
    deployment: Path, postgres_cluster: Cluster, tmp_path: Path
) -> None:
    """A `serve` killed after acknowledging leaves the question in its spool file, not in the
    database: the copy puts it into the SQLite file first, so PostgreSQL answers it."""
    spool = deployment.with_name(deployment.name + ".received")
    spool.mkdir()
    (spool / "0123456789abcdef.00000001.jsonl").write_text(
        '{"platform":"slack","key":"event:EvSPOOLED","kind":"dm","user_id":"U7",'
        '"conversation":"D7","text":"can I post a photo of the office?",'
        '"received_at":"2026-11-30T10:00:00.000+00:00","taken_by":"0123456789abcdef"}\n'
    )
    url = postgres_cluster.empty_database()
    try:
        result = copy("--from", str(deployment), "--to", url)
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output
        moved = PolicyBot.create(settings_on(url, tmp_path))
        try:
            late = LateSent()
            moved.late_repliers["slack"] = late
            assert asyncio.run(moved.answer_left_over()) == 2
            assert sorted(r.question for r in late.replies) == sorted(
                [TWEET, "can I post a photo of the office?"]
            )
        finally:
            asyncio.run(moved.aclose())
            moved.mark.release()
            moved.storage.close()
        record(CHECK, COMMAND, spooled_questions_carried=1)
    finally:
        postgres_cluster.drop(url)


def test_bad_or_unreachable_targets_get_a_clear_message_and_no_secret(
    deployment: Path, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = int(probe.getsockname()[1])
    refusals = {
        f"mysql://root:{PASSWORD}@db/x": "--to must be a PostgreSQL URL",
        f"postgresql://bot:{PASSWORD}@127.0.0.1:{closed}/x?password={PASSWORD}": (
            "Cannot use the database postgresql://127.0.0.1"
        ),
        # One urlsplit cannot read: libpq's refusal quotes the whole URL.
        f"postgresql://bot:{PASSWORD}@[::1:{closed}/x": "Cannot use the database",
        f"postgresql://[::1:{closed}/x?sslmode=disable&password={PASSWORD}": "Cannot use",
    }
    for url, said in refusals.items():
        result = copy("--from", str(deployment), "--to", url)
        assert result.exit_code == 4, result.output
        assert said in result.output, result.output
        assert PASSWORD not in result.output, result.output
    missing = tmp_path / "nowhere.db"
    result = copy("--from", str(missing), "--to", f"postgresql://127.0.0.1:{closed}/x")
    assert result.exit_code == 4 and "is not a SQLite database file" in result.output
    assert not missing.exists()  # never created by trying
    record(CHECK, COMMAND, bad_targets_refused=len(refusals), secrets_shown=0)


def test_from_defaults_to_the_configured_sqlite_file(
    deployment: Path, postgres_cluster: Cluster
) -> None:
    url = postgres_cluster.empty_database()
    try:
        result = CliRunner().invoke(
            main, ["db", "copy", "--to", url], env={"POLICYBOT_DB": str(deployment)}
        )
        assert result.exit_code == 0, result.output
        assert (
            postgres_counts(url, ["questions"])["questions"] == own_tables(deployment)["questions"]
        )
    finally:
        postgres_cluster.drop(url)
