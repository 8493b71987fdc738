"""What platforms delivered: handled deliveries (a platform's event ids, so every process on
the database drops its retries) and received questions (kept from the acknowledgement until
the reply went out, so a stopped process's questions are answered on the next start)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.connection import POSTGRESQL, Connected, lease_stamp

#: How long a handled delivery (an event id) is remembered. Slack retries an event three
#: times within about five minutes; an hour leaves room for a slow retry and a restart.
DELIVERY_RETENTION = timedelta(hours=1)
#: How often each process deletes deliveries older than that: one indexed DELETE per
#: interval, not one per event.
DELIVERY_PRUNE_INTERVAL = timedelta(minutes=10)
#: How long one process may take to post the digest to one platform before another may take
#: the post over (see `claim_digest`): far above a platform call's timeout.
DIGEST_LEASE = timedelta(minutes=10)
#: How long an answer message can still be traced to its question (`answer_message`): far
#: longer than anyone rates an answer; a rating after that is told the question is gone.
ANSWER_MESSAGE_RETENTION = timedelta(days=90)
#: A received question not yet replied to (see `receive`).
RECEIVED, LOGGED, REPLIED = "received", "logged", "replied"
#: One delivery for `DeliveryStore.receive_all`: platform, key, the question it carries (or
#: None), the process taking it, when it was received.
Received = tuple[str, str, dict[str, str] | None, str, datetime]


@dataclass(frozen=True)
class ReceivedQuestion:
    """A question a platform delivered and was told we received, until its reply went out."""

    id: int
    platform: str
    kind: str
    user_id: str
    conversation: str
    text: str
    received_at: datetime
    state: str
    question_id: int | None
    taken_by: str
    #: The conversation it continues, as the question log names it (a keyed pseudonym);
    #: "" for a question that stands alone.
    conversation_key: str = ""


class DeliveryStore(Connected):
    """Handled deliveries and received questions."""

    #: When this process last deleted expired handled deliveries; None: not yet.
    _deliveries_pruned_at: datetime | None = None
    #: When this process last deleted expired answer messages; None: not yet.
    _answer_messages_pruned_at: datetime | None = None

    def remember_answer_message(
        self,
        platform: str,
        conversation: str,
        message_id: str,
        question_id: int,
        *,
        now: datetime | None = None,
    ) -> None:
        """Record that `message_id` in `conversation` on `platform` shows `question_id`'s
        answer (a later record for the same message replaces it). StorageError when the
        database refuses the write."""
        now = now or datetime.now(UTC)
        pruned_at = self._answer_messages_pruned_at
        prune = pruned_at is None or now - pruned_at >= DELIVERY_PRUNE_INTERVAL
        with self._writing("The record of answer messages"), self.db.atomic():
            self.db.execute(
                "INSERT INTO answer_messages "
                "(platform, conversation, message_id, question_id, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, conversation, message_id) "
                "DO UPDATE SET question_id = excluded.question_id, "
                "created_at = excluded.created_at",
                [platform, conversation, message_id, question_id, now.isoformat()],
            )
            if prune:
                cutoff = (now - ANSWER_MESSAGE_RETENTION).isoformat()
                self.db.execute("DELETE FROM answer_messages WHERE created_at < ?", [cutoff])
        if prune:
            self._answer_messages_pruned_at = now

    def answer_message(self, platform: str, conversation: str, message_id: str) -> int | None:
        """The question whose answer `message_id` shows, or None (unknown, or expired)."""
        rows = self.db.execute(
            "SELECT question_id FROM answer_messages "
            "WHERE platform = ? AND conversation = ? AND message_id = ?",
            [platform, conversation, message_id],
        ).fetchall()
        return int(rows[0][0]) if rows else None

    def claim_delivery(self, platform: str, key: str, *, now: datetime | None = None) -> bool:
        """Record that `platform` delivered `key`: True the first time any process on this
        database records it, False for a repeat within DELIVERY_RETENTION. StorageError
        when the database refuses the write."""
        return self.receive(platform, key, None, now=now) != -1

    def receive(
        self,
        platform: str,
        key: str,
        question: dict[str, str] | None,
        *,
        taken_by: str = "",
        now: datetime | None = None,
    ) -> int | None:
        """Record that `platform` delivered `key` and, the first time, the question it carries
        (`question`: kind, user_id, conversation, text, conversation_key: the conversation's
        pseudonym), in one transaction. Returns the
        received question's id (None when there is no question), or -1 for a repeat of a
        delivery already taken within DELIVERY_RETENTION. StorageError when the database
        refuses the write."""
        now = now or datetime.now(UTC)
        with self._writing("The record of handled events"), self.db.atomic(serialized=False):
            return self._receive(platform, key, question, taken_by, now)

    def receive_all(self, deliveries: Sequence[Received]) -> list[int | None]:
        """`receive` for each delivery (platform, key, question, taken_by, when received) in
        one transaction, in order: what each returned."""
        with self._writing("The record of handled events"):
            if len(deliveries) == 1 and deliveries[0][2] is not None and self.engine == POSTGRESQL:
                return [self._receive(*deliveries[0])]  # one statement: a transaction already
            with self.db.atomic(serialized=False):
                return [self._receive(*delivery) for delivery in deliveries]

    def _receive(
        self,
        platform: str,
        key: str,
        question: dict[str, str] | None,
        taken_by: str,
        now: datetime,
    ) -> int | None:
        # Safe beside any other writer, so taken without the write lock (see
        # `Database.atomic`): the handled delivery's primary key decides who has it, and the
        # received question is inserted only with it.
        pruned_at = self._deliveries_pruned_at
        prune = pruned_at is None or now - pruned_at >= DELIVERY_PRUNE_INTERVAL
        first_seen = now.isoformat(timespec="seconds")
        received_id: int | None = None
        if question is not None and self.engine == POSTGRESQL:
            # One round trip: the delivery taken and its question kept by one statement.
            row = self.db.execute(
                "WITH taken AS (INSERT INTO handled_deliveries (platform, key, first_seen) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1) "
                "INSERT INTO received_questions (platform, kind, user_id, conversation, text, "
                "conversation_key, received_at, state, taken_by) "
                "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM taken) RETURNING id",
                [
                    platform,
                    key,
                    first_seen,
                    platform,
                    question.get("kind", ""),
                    question.get("user_id", ""),
                    question.get("conversation", ""),
                    question.get("text", ""),
                    question.get("conversation_key", ""),
                    now.isoformat(timespec="milliseconds"),
                    RECEIVED,
                    taken_by,
                ],
            ).fetchone()
            inserted = 0 if row is None else 1
            received_id = None if row is None else int(row[0])
        else:
            inserted = self.db.execute(
                "INSERT INTO handled_deliveries (platform, key, first_seen) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [platform, key, first_seen],
            ).rowcount
            if inserted == 1 and question is not None:
                received_id = self.db.insert_id(
                    "received_questions",
                    {
                        "platform": platform,
                        "kind": question.get("kind", ""),
                        "user_id": question.get("user_id", ""),
                        "conversation": question.get("conversation", ""),
                        "text": question.get("text", ""),
                        "conversation_key": question.get("conversation_key", ""),
                        "received_at": now.isoformat(timespec="milliseconds"),
                        "state": RECEIVED,
                        "taken_by": taken_by,
                    },
                )
        if prune:
            self.prune_deliveries(now - DELIVERY_RETENTION)
            self._deliveries_pruned_at = now
        if inserted != 1:
            return -1
        return received_id

    def mark_replied(self, received_id: int, *, now: datetime | None = None) -> None:
        """The reply to a received question went out: what it said and where to reply are
        no longer needed (a check of a draft post is never logged, so its text goes here)."""
        now = now or datetime.now(UTC)
        # Not waiting for the disk: undone by a power cut, the reply is sent again after the
        # restart (a repeat, never a loss).
        with self._writing("The record of received questions"):
            self.db.write(
                "UPDATE received_questions SET state = ?, replied_at = ?, text = '', "
                "user_id = '', conversation = '', conversation_key = '' WHERE id = ?",
                [REPLIED, now.isoformat(timespec="milliseconds"), received_id],
                durable=False,
            )

    def unreplied(self, platform: str | None = None) -> list[ReceivedQuestion]:
        """Received questions whose reply has not gone out, oldest first."""
        where, params = "state != ?", [REPLIED]
        if platform is not None:
            where += " AND platform = ?"
            params.append(platform)
        rows = self.db.execute(
            "SELECT id, platform, kind, user_id, conversation, text, received_at, state, "
            f"question_id, taken_by, conversation_key FROM received_questions WHERE {where} "
            "ORDER BY id",
            params,
        ).fetchall()
        return [
            ReceivedQuestion(
                id=int(r[0]),
                platform=r[1] or "",
                kind=r[2] or "",
                user_id=r[3] or "",
                conversation=r[4] or "",
                text=r[5] or "",
                received_at=datetime.fromisoformat(r[6]),
                state=r[7],
                question_id=r[8],
                taken_by=r[9] or "",
                conversation_key=r[10] or "",
            )
            for r in rows
        ]

    def take_received(self, received_id: int, taker: str, from_taker: str) -> bool:
        """Move a received question from one process (one no longer running) to `taker`;
        False when another process took it first or its reply has gone out."""
        with self._writing("The record of received questions"), self.db.atomic():
            cursor = self.db.execute(
                "UPDATE received_questions SET taken_by = ? "
                "WHERE id = ? AND taken_by = ? AND state != ?",
                [taker, received_id, from_taker, REPLIED],
            )
        return cursor.rowcount == 1

    def prune_deliveries(self, before: datetime) -> int:
        """Forget handled deliveries first seen before `before`, and received questions
        replied to before it; how many deliveries were forgotten. Not serialized: DELETEs
        of rows past their retention, safe beside any writer, and run inside `receive`'s
        transaction, which takes no lock either."""
        with self.db.atomic(serialized=False):
            cursor = self.db.execute(
                "DELETE FROM handled_deliveries WHERE first_seen < ?",
                [before.isoformat(timespec="seconds")],
            )
            self.db.execute(
                "DELETE FROM received_questions WHERE state = ? AND replied_at < ?",
                [REPLIED, before.isoformat(timespec="milliseconds")],
            )
        return int(cursor.rowcount)

    # -- the weekly digest, posted once ---------------------------------------------------
    def claim_digest(
        self,
        period: str,
        claimant: str,
        *,
        lease: timedelta = DIGEST_LEASE,
        now: datetime | None = None,
    ) -> bool:
        """Claim posting the digest of `period` (a week and platform, see
        bot.review.digest) for `claimant`: True when this call took it; False when it was
        posted already, or another process holds an unexpired claim. A claim whose lease ran
        out (its process died while posting) is taken again."""
        now = now or datetime.now(UTC)
        until = lease_stamp(now + lease)
        with self._writing("The record of posted digests"), self.db.atomic():
            inserted = self.db.execute(
                "INSERT INTO digest_posts (week, claimed_by, claimed_until, posted_at) "
                "VALUES (?, ?, ?, '') ON CONFLICT DO NOTHING",
                [period, claimant, until],
            ).rowcount
            if inserted == 1:
                return True
            cursor = self.db.execute(
                "UPDATE digest_posts SET claimed_by = ?, claimed_until = ? "
                "WHERE week = ? AND posted_at = '' AND claimed_until <= ?",
                [claimant, until, period, lease_stamp(now)],
            )
        return cursor.rowcount == 1

    def digest_posted(
        self, period: str, claimant: str, *, posted: bool, now: datetime | None = None
    ) -> None:
        """The claimant's post of `period` went out (kept, so nobody posts it again) or failed
        (the claim given up, so the next run posts it)."""
        now = now or datetime.now(UTC)
        with self._writing("The record of posted digests"), self.db.atomic():
            if posted:
                self.db.execute(
                    "UPDATE digest_posts SET posted_at = ? WHERE week = ? AND claimed_by = ?",
                    [lease_stamp(now), period, claimant],
                )
            else:
                self.db.execute(
                    "DELETE FROM digest_posts WHERE week = ? AND claimed_by = ? AND posted_at = ''",
                    [period, claimant],
                )
