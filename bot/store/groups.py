"""Review groups: similar open questions gathered, their term profile, their reviewed answer,
and delivering that answer to each member's asker."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.store.connection import Connected, lease_stamp, utcnow
from bot.store.questions import question_rows
from bot.store.rows import PendingDelivery, QuestionRow, ReviewAction

#: How long a process may take to send one reviewed answer before another process may take
#: the delivery over (see `claim_reply`): far above a platform call's timeout, so a live
#: sender keeps it, and short enough that an answer a dead process claimed still goes out.
DELIVERY_LEASE = timedelta(minutes=5)


class GroupStore(Connected):
    """Question groups and the delivery of their answers."""

    def create_group(self, row: dict[str, Any]) -> int:
        # One statement each (here and in update_group): no savepoint inside the caller's
        # transaction, two round trips fewer on PostgreSQL for every question grouped.
        return self.db.write_id(
            "question_groups", {"created_at": utcnow(), "answer": "", "answered_at": "", **row}
        )

    def update_group(self, group_id: int, **fields: Any) -> None:
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        cursor = self.db.write(
            f"UPDATE question_groups SET {assignments} WHERE id = ?",
            [*fields.values(), group_id],
        )
        if cursor.rowcount == 0:
            raise KeyError(group_id)

    def _groups(self, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        reasons = self.db.concat_distinct("q.review_reason")
        cursor = self.db.execute(
            f"""SELECT g.*, count(q.id) AS count,
                   coalesce(min(q.asked_at), g.created_at) AS first_seen,
                   coalesce(max(q.asked_at), g.created_at) AS last_seen,
                   coalesce({reasons}, '') AS reasons
            FROM question_groups g LEFT JOIN questions q ON q.group_id = g.id
            WHERE {where} GROUP BY g.id ORDER BY g.id""",
            list(params),
        )
        columns = [d[0] for d in cursor.description]
        out = []
        for values in cursor.fetchall():
            row = dict(zip(columns, values, strict=True))
            row["signature"] = json.loads(row["signature"] or "{}")
            out.append(row)
        return out

    def group(self, group_id: int) -> dict[str, Any]:
        rows = self._groups("g.id = ?", [group_id])
        if not rows:
            raise KeyError(group_id)
        return rows[0]

    def groups(self, status: str | None = None) -> list[dict[str, Any]]:
        if status is None:
            return self._groups("1 = 1", [])
        return self._groups("g.status = ?", [status])

    def group_profiles(self, status: str) -> list[tuple[int, str, str, str]]:
        """(id, signature, document, section) of the groups of a status: what matching a new
        question needs, without counting every group's members on each question asked. The
        signature is the stored JSON text, so the caller decodes only the groups it needs."""
        rows = self.db.execute(
            "SELECT id, signature, document, section FROM question_groups "
            "WHERE status = ? ORDER BY id",
            [status],
        ).fetchall()
        return [(int(r[0]), r[1] or "{}", r[2] or "", r[3] or "") for r in rows]

    def member_closest_clauses(self, group_id: int) -> list[int]:
        """The clause each member question was closest to, in the order they were asked."""
        rows = self.db.execute(
            "SELECT closest_clause_id FROM questions WHERE group_id = ? "
            "AND closest_clause_id IS NOT NULL ORDER BY id",
            [group_id],
        ).fetchall()
        return [int(r[0]) for r in rows]

    def group_members(self, group_id: int) -> list[QuestionRow]:
        rows = question_rows(self.db, "group_id = ?", [group_id], limit=1_000_000)
        return sorted(rows, key=lambda row: row.id)

    def close_group_questions(self, group_id: int, status: str) -> list[int]:
        """Move the group's open questions to `status`; returns their ids."""
        rows = self.db.execute(
            "SELECT id FROM questions WHERE group_id = ? AND status = 'open' ORDER BY id",
            [group_id],
        ).fetchall()
        ids = [int(r[0]) for r in rows]
        with self.db.atomic():
            self.db.execute(
                "UPDATE questions SET status = ? WHERE group_id = ? AND status = 'open'",
                [status, group_id],
            )
        return ids

    def group_samples(self, group_ids: Sequence[int], per_group: int) -> dict[int, list[str]]:
        """Up to `per_group` distinct question texts of each group, earliest asked first."""
        ids = list(group_ids)
        if not ids or per_group <= 0:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT group_id, text FROM questions WHERE group_id IN ({marks}) ORDER BY id", ids
        ).fetchall()
        out: dict[int, list[str]] = {}
        for group_id, text in rows:
            texts = out.setdefault(int(group_id), [])
            if len(texts) < per_group and text and text not in texts:
                texts.append(text)
        return out

    # -- who did what, when -------------------------------------------------------------------
    def record_review_action(self, group_id: int, action: str, actor: str, detail: str = "") -> int:
        """Note one action on a group; inside the caller's transaction when there is one, so
        the action and its record are stored together or not at all."""
        with self.db.atomic():
            return self.db.insert_id(
                "review_actions",
                {
                    "group_id": group_id,
                    "action": action,
                    "actor": actor,
                    "acted_at": utcnow(),
                    "detail": detail,
                },
            )

    def review_actions(self, group_id: int) -> list[ReviewAction]:
        """A group's actions, oldest first."""
        rows = self.db.execute(
            "SELECT id, group_id, action, actor, acted_at, detail FROM review_actions "
            "WHERE group_id = ? ORDER BY id",
            [group_id],
        ).fetchall()
        return [
            ReviewAction(int(r[0]), int(r[1]), r[2] or "", r[3] or "", r[4] or "", r[5] or "")
            for r in rows
        ]

    # -- delivering answers to askers -----------------------------------------------------------
    def pending_deliveries(self, group_id: int | None = None) -> list[PendingDelivery]:
        """Askers of resolved questions whose reply address is still kept: not yet reached."""
        where = "q.status = 'resolved' AND g.status = 'answered'"
        params: list[Any] = []
        if group_id is not None:
            where += " AND g.id = ?"
            params.append(group_id)
        cursor = self.db.execute(
            f"""SELECT q.id AS question_id, q.text, g.id AS group_id, g.answer, g.answered_at,
                       r.platform, r.user_id, r.conversation, coalesce(r.attempts, 0) AS attempts
                FROM reply_addresses r JOIN questions q ON q.id = r.question_id
                JOIN question_groups g ON g.id = q.group_id
                WHERE {where} ORDER BY q.id""",
            params,
        )
        columns = [d[0] for d in cursor.description]
        return [
            PendingDelivery(**dict(zip(columns, values, strict=True)))
            for values in cursor.fetchall()
        ]

    def claim_reply(
        self,
        question_id: int,
        claimant: str,
        *,
        lease: timedelta = DELIVERY_LEASE,
        now: datetime | None = None,
    ) -> bool:
        """Claim the delivery of a reviewed answer to one asker for `claimant` (a process) until
        the lease ends: True when this call took it, False when another claimant holds an
        unexpired lease or the address is gone (delivered, expired). One conditional UPDATE,
        so of two processes racing for the row exactly one wins on either engine."""
        now = now or datetime.now(UTC)
        with self._writing("The delivery of reviewed answers"), self.db.atomic():
            cursor = self.db.execute(
                "UPDATE reply_addresses SET claimed_by = ?, claimed_until = ? "
                "WHERE question_id = ? AND (claimed_until IS NULL OR claimed_until = '' "
                "OR claimed_until <= ?)",
                [claimant, lease_stamp(now + lease), question_id, lease_stamp(now)],
            )
        return cursor.rowcount == 1

    def delete_reply_address(self, question_id: int) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM reply_addresses WHERE question_id = ?", [question_id])

    def delete_reply_addresses_of_group(self, group_id: int) -> int:
        with self.db.atomic():
            cursor = self.db.execute(
                "DELETE FROM reply_addresses WHERE question_id IN "
                "(SELECT id FROM questions WHERE group_id = ?)",
                [group_id],
            )
        return int(cursor.rowcount)

    def record_delivery_failure(self, question_id: int, error: str) -> None:
        """Count a failed attempt and give up the claim, so the next run retries it."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE reply_addresses SET attempts = coalesce(attempts, 0) + 1, "
                "last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE question_id = ?",
                [error[:500], question_id],
            )
