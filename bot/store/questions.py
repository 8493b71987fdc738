"""The question log: each question with its confidence, citations and policy version, the
asker as a keyed pseudonym; reply addresses and asker names kept apart, and retention."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from bot.store.connection import POSTGRESQL, Connected, Database, column_names, utcnow
from bot.store.deliveries import LOGGED, RECEIVED
from bot.store.rows import FACT_COLUMNS, QuestionFact, QuestionRow, RoutedQuestion


def question_rows(db: Database, where: str, params: Sequence[Any], limit: int) -> list[QuestionRow]:
    """Rows of the question log, newest first."""
    cursor = db.execute(
        f"SELECT * FROM questions WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit]
    )
    columns = [d[0] for d in cursor.description]
    return [QuestionRow.from_sql(columns, values) for values in cursor.fetchall()]


class QuestionLog(Connected):
    """The question log, reply addresses, asker names and their retention."""

    _pseudonym_key: bytes | None = None

    def pseudonym(self, platform: str, user_id: str, kind: str = "asker") -> str:
        """A stable, non-reversible name for an asker (or, with `kind`, another platform id
        such as a conversation's), so the log shows no identities."""
        if not user_id:
            return ""
        if self._pseudonym_key is None:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()
            if row is None:
                key = secrets.token_hex(32)
                # atomic, not commit(): the caller may be inside a transaction of its own.
                with self._writing("The asker pseudonym key"), self.db.atomic():
                    self.db.execute(
                        "INSERT INTO meta (key, value) VALUES ('pseudonym_key', ?) "
                        "ON CONFLICT DO NOTHING",
                        [key],
                    )
                row = self.db.execute(
                    "SELECT value FROM meta WHERE key = 'pseudonym_key'"
                ).fetchone()
            self._pseudonym_key = bytes.fromhex(row[0])
        named = f"{platform}:{user_id}" if kind == "asker" else f"{kind}:{platform}:{user_id}"
        digest = hmac.new(self._pseudonym_key, named.encode(), "sha256")
        return f"{kind}-{digest.hexdigest()[:10]}"

    def log_question(
        self,
        record: dict[str, Any],
        reply_to: dict[str, str] | None = None,
        asker_name: str = "",
        received_id: int | None = None,
    ) -> int:
        """Log a question; with `received_id`, its received question is marked logged in the
        same transaction, so it is never logged a second time after a restart."""
        row = dict(record)
        for key in ("version_ids", "citations", "notes"):
            if key in row and not isinstance(row[key], str):
                row[key] = json.dumps(row[key])
        row.setdefault("asked_at", utcnow())
        if self.engine == POSTGRESQL:
            with self._writing("The question log"):
                return self._log_in_one_statement(row, reply_to, asker_name, received_id)
        # Not serialized (see `Database.atomic`): inserts of new rows, and an UPDATE whose
        # WHERE is its own condition. Not waiting for the disk when a received row redoes it:
        # a power cut that undoes it also undoes the logged mark, and the received question is
        # then logged and answered again after the restart.
        with (
            self._writing("The question log"),
            self.db.atomic(serialized=False, durable=received_id is None),
        ):
            question_id = self.db.insert_id("questions", row)
            if reply_to and reply_to.get("user_id"):
                self.db.insert(
                    "reply_addresses",
                    {"question_id": question_id, "created_at": utcnow(), **reply_to},
                )
            if asker_name:
                self.db.insert(
                    "asker_names",
                    {"question_id": question_id, "name": asker_name, "created_at": utcnow()},
                )
            if received_id is not None:
                self.db.execute(
                    "UPDATE received_questions SET state = ?, question_id = ? "
                    "WHERE id = ? AND state = ?",
                    [LOGGED, question_id, received_id, RECEIVED],
                )
        return question_id

    def _log_in_one_statement(
        self,
        row: dict[str, Any],
        reply_to: dict[str, str] | None,
        asker_name: str,
        received_id: int | None,
    ) -> int:
        """`log_question` on PostgreSQL as one statement (a statement is a transaction of its
        own): the question, its reply address, the asker's name and the received question
        marked logged, in one round trip where four inserts and an UPDATE took six."""
        marks = ", ".join("?" * len(row))
        parts = [
            f"q AS (INSERT INTO questions ({column_names(list(row))}) VALUES ({marks}) "
            "RETURNING id)"
        ]
        params: list[Any] = list(row.values())
        now = utcnow()
        if reply_to and reply_to.get("user_id"):
            columns = list(reply_to)
            parts.append(
                "r AS (INSERT INTO reply_addresses (question_id, created_at, "
                f"{column_names(columns)}) SELECT id, ?{', ?' * len(columns)} FROM q)"
            )
            params += [now, *reply_to.values()]
        if asker_name:
            parts.append(
                "n AS (INSERT INTO asker_names (question_id, name, created_at) "
                "SELECT id, ?, ? FROM q)"
            )
            params += [asker_name, now]
        if received_id is not None:
            parts.append(
                "u AS (UPDATE received_questions SET state = ?, question_id = (SELECT id FROM q) "
                "WHERE id = ? AND state = ?)"
            )
            params += [LOGGED, received_id, RECEIVED]
        found = self.db.write(f"WITH {', '.join(parts)} SELECT id FROM q", params).fetchone()
        return int(found[0])

    def update_question(self, question_id: int, **fields: Any) -> None:
        if not fields:
            return
        for key in ("notes", "citations", "version_ids"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = json.dumps(fields[key])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        cursor = self.db.write(
            f"UPDATE questions SET {assignments} WHERE id = ?", [*fields.values(), question_id]
        )
        if cursor.rowcount == 0:
            raise KeyError(question_id)

    def question(self, question_id: int) -> QuestionRow:
        rows = self._questions("id = ?", [question_id], limit=1)
        if not rows:
            raise KeyError(question_id)
        return rows[0]

    def questions(self, status: str | None = None, limit: int = 1000) -> list[QuestionRow]:
        if status is None:
            return self._questions("1 = 1", [], limit)
        return self._questions("status = ?", [status], limit)

    def _questions(self, where: str, params: Sequence[Any], limit: int) -> list[QuestionRow]:
        return question_rows(self.db, where, params, limit)

    def conversation_turns(
        self, conversation_key: str, asker: str, since: str, limit: int
    ) -> list[tuple[str, str | None]]:
        """(as asked, standalone) of the newest `limit` questions `asker` (a pseudonym) asked
        in the conversation since `since` (ISO time), oldest first: refused ones left out,
        and another asker's never included."""
        if not conversation_key or not asker:
            return []
        rows = self.db.execute(
            "SELECT text, standalone FROM questions WHERE conversation_key = ? AND asker = ? "
            "AND asked_at >= ? AND status != 'refused' ORDER BY id DESC LIMIT ?",
            [conversation_key, asker, since, limit],
        ).fetchall()
        return [(str(r[0]), None if r[1] is None else str(r[1])) for r in reversed(rows)]

    def open_unanswered_questions(self) -> list[tuple[int, str]]:
        """(id, the question as the bot understood it) of questions on the review list that
        the policy did not answer: a follow-up is re-checked as its standalone question."""
        rows = self.db.execute(
            "SELECT id, COALESCE(standalone, text) FROM questions "
            "WHERE status = 'open' AND answered = 0 ORDER BY id"
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def mark_now_answered(
        self,
        question_id: int,
        version_id: int | None,
        confidence: float = 0.0,
        citations: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Flag (or, with version_id None, unflag) an open question the active policy answers."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE questions SET now_answered_version = ?, now_answered_at = ?, "
                "now_answered_confidence = ?, now_answered_citations = ? WHERE id = ?",
                [
                    version_id,
                    utcnow() if version_id is not None else None,
                    round(confidence, 4) if version_id is not None else None,
                    json.dumps(list(citations)) if version_id is not None else None,
                    question_id,
                ],
            )

    def now_answered_by(self, version_id: int, since: str) -> list[QuestionRow]:
        """Open questions a re-check on or after `since` found `version_id` now answers (the
        version holding the best clause), oldest first."""
        rows = question_rows(
            self.db,
            "status = 'open' AND now_answered_version = ? AND now_answered_at >= ?",
            [version_id, since],
            limit=1_000_000,
        )
        return sorted(rows, key=lambda row: row.id)

    def reply_address(self, question_id: int) -> dict[str, str] | None:
        row = self.db.execute(
            "SELECT platform, user_id, conversation FROM reply_addresses WHERE question_id = ?",
            [question_id],
        ).fetchone()
        if row is None:
            return None
        return {"platform": row[0], "user_id": row[1], "conversation": row[2]}

    def asker_names(self, question_ids: Iterable[int]) -> dict[int, str]:
        ids = list(question_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT question_id, name FROM asker_names WHERE question_id IN ({marks})", ids
        ).fetchall()
        return {int(r[0]): r[1] for r in rows}

    def questions_between(
        self,
        *,
        status: str | None = None,
        since: str = "",
        until: str = "",
    ) -> list[RoutedQuestion]:
        """Questions asked in [since, until) (ISO times; "" = open end), oldest first.

        Each carries its routing (`owner`, `closest_section`, `closest_title`: its group's or
        closest clause's section and team, through which the policy team's queues are split).
        """
        where = ["1 = 1"]
        params: list[Any] = []
        if status is not None:
            where.append("q.status = ?")
            params.append(status)
        if since:
            where.append("q.asked_at >= ?")
            params.append(since)
        if until:
            where.append("q.asked_at < ?")
            params.append(until)
        cursor = self.db.execute(
            f"""SELECT q.*, coalesce(g.owner, c.owner, '') AS owner,
                       coalesce(g.section, c.section, '') AS closest_section,
                       coalesce(g.section_title, c.section_title, '') AS closest_title,
                       coalesce(g.status, '') AS group_status,
                       coalesce(g.answer, '') AS reviewed_answer,
                       coalesce(g.answered_at, '') AS reviewed_at
                FROM questions q
                LEFT JOIN question_groups g ON g.id = q.group_id
                LEFT JOIN clauses c ON c.id = q.closest_clause_id
                WHERE {" AND ".join(where)} ORDER BY q.asked_at, q.id""",
            params,
        )
        columns = [d[0] for d in cursor.description]
        return [RoutedQuestion.from_sql(columns, values) for values in cursor.fetchall()]

    def question_facts(self, since: str, until: str) -> list[QuestionFact]:
        """What the trends count of every question asked in [since, until) (ISO times),
        oldest first: no text, no asker, so a long range stays cheap to read."""
        cursor = self.db.execute(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM questions "
            "WHERE asked_at >= ? AND asked_at < ? ORDER BY asked_at, id",
            [since, until],
        )
        return [QuestionFact.from_sql(values) for values in cursor.fetchall()]

    # -- retention ------------------------------------------------------------------------------
    def expire_contacts(self, before: str) -> int:
        """Delete reply addresses and asker names kept since before `before` (ISO time)."""
        with self.db.atomic():
            addresses = self.db.execute(
                "DELETE FROM reply_addresses WHERE created_at < ?", [before]
            ).rowcount
            self.db.execute("DELETE FROM asker_names WHERE created_at < ?", [before])
        return int(addresses)

    def purge_questions(self, before: str, *, dry_run: bool = False) -> dict[str, int]:
        """Delete questions asked before `before`, with everything kept about their askers.

        Groups left without questions go too, except answered ones: their reviewed answer and
        term profile keep teaching the bot.
        """
        old = "SELECT id FROM questions WHERE asked_at < ?"
        counts = {
            "questions": int(
                self.db.execute(
                    f"SELECT count(*) FROM ({old}) AS old_questions", [before]
                ).fetchone()[0]
            ),
            "reply_addresses": int(
                self.db.execute(
                    f"SELECT count(*) FROM reply_addresses WHERE question_id IN ({old})", [before]
                ).fetchone()[0]
            ),
        }
        empty_groups = """SELECT g.id FROM question_groups g WHERE g.status != 'answered'
            AND NOT EXISTS (SELECT 1 FROM questions q WHERE q.group_id = g.id
                            AND q.asked_at >= ?)"""
        counts["groups"] = int(
            self.db.execute(
                f"SELECT count(*) FROM ({empty_groups}) AS empty_groups", [before]
            ).fetchone()[0]
        )
        if dry_run:
            return counts
        with self.db.atomic():
            self.db.execute(f"DELETE FROM reply_addresses WHERE question_id IN ({old})", [before])
            self.db.execute(f"DELETE FROM asker_names WHERE question_id IN ({old})", [before])
            self.db.execute(f"DELETE FROM question_groups WHERE id IN ({empty_groups})", [before])
            self.db.execute("DELETE FROM questions WHERE asked_at < ?", [before])
        return counts
