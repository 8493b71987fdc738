"""Questions received before the platform is told so, kept until they are answered.

A platform retries what is not acknowledged in seconds, so a delivery is taken before its
acknowledgement: its key recorded (a retry, here or in another process, is dropped) and the
question it carries kept, first in the spool on disk (bot.received_spool), then in the
database by the worker, until its reply goes out. On start, what a stopped process
acknowledged and did not answer is answered through the platform's `LateReplier`.

`ReceivedQuestions` does that job for `PolicyBot`, which owns one (`PolicyBot.received`) and
answers what is left over (`Answering`); adapters call it through `PolicyBot`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from bot.answering.checking import PostCheck
from bot.models import Answer, IncomingQuestion, QuestionError
from bot.notify import LateReplier, LateReply, ReplyAddress
from bot.question_log import QuestionLog
from bot.received_spool import ReceivedSpool, Record
from bot.store.database import LOGGED, ReceivedQuestion, Storage, StorageError
from bot.store.liveness import ProcessMark
from bot.text import clean_text, storable
from bot.worker import Worker

log = logging.getLogger(__name__)

#: An answer sent this long after its question was received says it is late: longer than
#: Slack gives an acknowledgement, and than the "Thinking…" placeholder takes to show.
LATE_AFTER = timedelta(seconds=3)
#: The kind of a received question that is a draft post to check (`PolicyBot.check_post`),
#: not logged.
CHECK = "check"
#: How long this process remembers the keys it took, to drop a repeat before acknowledging
#: it: longer than Slack's retries and a signed request's 5 minutes; a later repeat is
#: still dropped, by the database, before it is answered.
RECENT_DELIVERIES = timedelta(minutes=10)
#: A spooled delivery that carries no question (a button, a file): only its key is taken.
NO_QUESTION = "none"


@dataclass(frozen=True)
class Delivery:
    """What `ReceivedQuestions.receive` made of a delivery: whether it is the first (else a
    repeat to drop), and the id of the question it carries, kept until its reply goes out."""

    first: bool
    received_id: int | None = None


@dataclass(frozen=True)
class Receipt:
    """What `ReceivedQuestions.take_delivery` made of a delivery before its acknowledgement:
    `repeat` when this process has taken the same key already (drop it now); otherwise the
    delivery is kept (on disk, or in the database when it carries no question) and
    `delivery()` says, once the database has it, whether it was the first to any process.
    Settled from the loop that took it, awaited on any: the server's loop takes a Slack
    question and another answers it (adapters.slack.answering)."""

    repeat: bool
    _settled: concurrent.futures.Future[Delivery] | None = None

    async def delivery(self) -> Delivery:
        if self.repeat:
            return Delivery(False)
        assert self._settled is not None
        # Shielded: one waiter giving up must not cancel the settlement the others await.
        return await asyncio.shield(asyncio.wrap_future(self._settled))


class Answering(Protocol):
    """What answers a question a stopped process left (`PolicyBot`): asking it, checking a
    draft, a logged answer as it was given, the review channel told, and each platform's
    way of answering late."""

    late_repliers: dict[str, LateReplier]

    async def ask(self, incoming: IncomingQuestion, *, received: int | None = None) -> Answer: ...

    def check_post(self, text: str) -> PostCheck: ...

    def logged_answer(self, question_id: int) -> Answer: ...

    async def refer_unanswered(self, answer: Answer, incoming: IncomingQuestion) -> None: ...


@dataclass
class ReceivedQuestions:
    """This process's deliveries from taking them to their reply: its database, worker and
    question log are the owning `PolicyBot`'s."""

    storage: Storage
    worker: Worker
    question_log: QuestionLog
    #: This process, as the taker of the questions it receives (see bot.store.liveness).
    mark: ProcessMark
    #: Questions delivered and acknowledged, kept on disk beside the database until the
    #: worker has them in it (bot.received_spool), in files named by `mark`.
    spool: ReceivedSpool = field(init=False, repr=False)
    #: (platform, key) -> when this process took it, for dropping a repeat before the
    #: database has the first (kept RECENT_DELIVERIES; later repeats the database drops).
    _taken: dict[tuple[str, str], float] = field(default_factory=dict, init=False, repr=False)
    #: Spooled deliveries waiting for the worker to put them in the database, in order.
    _to_record: list[tuple[Record, Path | None, concurrent.futures.Future[Delivery]]] = field(
        default_factory=list, init=False, repr=False
    )
    _recording: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.spool = ReceivedSpool.beside(self.storage.path, self.mark.token)

    async def aclose(self) -> None:
        """Stop moving spooled deliveries into the database; call it before the worker stops."""
        if self._recording is not None and not self._recording.done():
            # Whatever is not in the database yet stays in the spool for the next start.
            self._recording.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recording
        await self.spool.aclose()

    def claim_delivery(self, platform: str, key: str) -> bool:
        """Record that `platform` delivered `key` (an event or file id) and say whether this
        is its first delivery to any process on this database: False for a retry of one
        already claimed, which the adapter drops. Kept in the database, so it holds across
        restarts and between several server processes (the insert also prunes old keys)."""
        return self.receive(platform, key).first

    def receive(
        self,
        platform: str,
        key: str,
        question: IncomingQuestion | None = None,
        kind: str = "",
        *,
        now: datetime | None = None,
    ) -> Delivery:
        """Take a delivery before acknowledging it: `claim_delivery`, and in the same
        transaction the question it carries, if any, kept until its reply goes out
        (`PolicyBot.ask` with `received`, then `replied`); a process stopped in between
        leaves it to `answer_left_over` on the next start. `kind` is the platform's kind of question
        (CHECK: a draft to check, never logged)."""
        row = None
        if question is not None:
            question = storable(question)  # kept before `ask` sees it: encodable here too
            row = {
                "kind": kind,
                "user_id": question.asker,
                "conversation": question.conversation,
                "text": question.text,
            }
        try:
            if row is not None and question is not None:
                row["conversation_key"] = self.question_log.conversation_of(question)
            received_id = self.storage.receive(
                platform, key, row, taken_by=self.mark.hold(), now=now
            )
        except StorageError as error:
            # The database cannot remember it (disk full, read-only): handle it as new. A
            # retry may then be answered twice, but dropping a question nobody answered would
            # be worse.
            log.warning("handling %s %s as new: %s", platform, key, error)
            return Delivery(True)
        if received_id == -1:
            return Delivery(False)
        return Delivery(True, received_id)

    async def take_delivery(
        self,
        platform: str,
        key: str,
        question: IncomingQuestion | None = None,
        kind: str = "",
    ) -> Receipt:
        """`receive`, for a server about to acknowledge, without waiting for the database:
        the delivery, and the question it carries if any, is kept in the spool (fsynced with
        the others arriving meanwhile) and put in the database by the worker after. A repeat
        of a key this process took is dropped at once; whether another process (or this one
        before a restart) took it first shows in `Receipt.delivery()`, which whatever acts on
        a delivery (answers its question, applies its click) awaits first, after the
        acknowledgement: the worker may be busy, or another process holding the write lock."""
        now = time.monotonic()
        self._forget_taken(now)
        if (platform, key) in self._taken:
            return Receipt(True)
        self._taken[(platform, key)] = now
        settled: concurrent.futures.Future[Delivery] = concurrent.futures.Future()
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        record: Record
        if question is None:
            record = {
                "platform": platform,
                "key": key,
                "question": NO_QUESTION,
                "received_at": received_at,
                "taken_by": self.mark.hold(),
            }
        else:
            question = storable(question)
            record = {
                "platform": platform,
                "key": key,
                "kind": kind,
                "user_id": question.asker,
                "conversation": question.conversation,
                "text": question.text,
                # As the platform names it: its pseudonym needs the database, which this must
                # not wait for (the worker names it as it moves the record in).
                "conversation_key": question.conversation_key,
                "received_at": received_at,
                "taken_by": self.mark.hold(),
            }
        try:
            path = await self.spool.keep(record)
        except OSError as error:
            # Not kept on disk: straight into the database, as before the spool existed.
            log.warning("could not spool %s %s: %s", platform, key, error)
            settled.set_result(await self.worker.run(self.receive, platform, key, question, kind))
            return Receipt(False, settled)
        self._to_record.append((record, path, settled))
        if self._recording is None or self._recording.done():
            self._recording = asyncio.create_task(self._record_spooled())
        return Receipt(False, settled)

    def _forget_taken(self, now: float) -> None:
        horizon = now - RECENT_DELIVERIES.total_seconds()
        while self._taken:  # oldest first: the order they were taken in
            key, taken_at = next(iter(self._taken.items()))
            if taken_at >= horizon:
                return
            del self._taken[key]

    async def _record_spooled(self) -> None:
        """Move spooled deliveries into the database, many per transaction, in order."""
        while self._to_record:
            batch, self._to_record = self._to_record, []
            records = [record for record, _, _ in batch]
            try:
                ids = await self.worker.run(self.record_received, records)
            except Exception as error:
                # The database cannot remember them (disk full, read-only; or a bug): handle
                # them as new. A retry may then be answered twice, but dropping a question
                # nobody answered would be worse, and a receipt never settled would hold up
                # every question acknowledged after it.
                if not isinstance(error, StorageError):
                    log.exception("recording received deliveries failed")
                for record in records:
                    log.warning(
                        "handling %s %s as new: %s", record["platform"], record["key"], error
                    )
                ids = [None] * len(batch)
            for (_, path, settled), received_id in zip(batch, ids, strict=True):
                self.spool.drained(path)
                if not settled.done():
                    settled.set_result(
                        Delivery(False) if received_id == -1 else Delivery(True, received_id)
                    )

    def record_received(self, records: Sequence[Record]) -> list[int | None]:
        """Spooled deliveries into the database in one transaction (`Storage.receive` each,
        received when they were acknowledged): their received questions' ids, -1 for a
        repeat of a key already taken."""
        return self.storage.receive_all(
            [
                (
                    record["platform"],
                    record["key"],
                    None
                    if record.get("question") == NO_QUESTION
                    else {
                        "kind": record.get("kind", ""),
                        "user_id": record.get("user_id", ""),
                        "conversation": record.get("conversation", ""),
                        "text": record.get("text", ""),
                        # "" for none: a pseudonym of nothing is nothing.
                        "conversation_key": self.question_log.conversation_pseudonym(
                            record["platform"], record.get("conversation_key", "")
                        ),
                    },
                    record.get("taken_by", ""),
                    datetime.fromisoformat(record["received_at"]),
                )
                for record in records
            ]
        )

    def record_left_in_spool(self) -> int:
        """On start: what stopped processes spooled and did not put in the database goes in
        now (as theirs, so `answer_left_over` answers it); how many records were moved."""
        moved = 0
        for path, records in self.spool.left_over(self.mark.running):
            usable = [r for r in records if {"platform", "key", "received_at"} <= r.keys()]
            if usable:
                self.record_received(usable)
            moved += len(usable)
            path.unlink(missing_ok=True)
        return moved

    async def record_reply(self, received_id: int | None) -> None:
        """`replied`, from the worker, ahead of what waits there: until it is in the
        database, a process stopped sends the reply again on its next start, and a burst
        of questions queues seconds of asking in the worker."""
        if received_id is not None:
            await self.worker.run_next(self.replied, received_id)

    def replied(self, received_id: int | None) -> None:
        """The reply to a received question went out: it is no longer left to answer."""
        if received_id is None:
            return
        try:
            self.storage.mark_replied(received_id)
        except StorageError as error:  # answered again on the next start: late, not lost
            log.warning(
                "could not record the reply to received question %s: %s", received_id, error
            )

    async def answer_left_over(self, answering: Answering, *, now: datetime | None = None) -> int:
        """On start: answer every question a process that is no longer running acknowledged
        and did not reply to, on the platform it was asked on (`answering.late_repliers`;
        `answering`, the `PolicyBot`, asks it), saying the answer is late when it is. A
        question not yet logged is asked now, so logged once; one already logged is sent as
        logged, not logged again (its first reply may have gone out just before the process
        stopped: the asker would see it twice, which beats never). Returns how many were
        answered; failures are left for the next start."""
        await self.worker.run(self._left_over_prepared)
        return await self._answer_left(answering, now)

    def take_in_left_over(self) -> None:
        """What stopped processes left beside the database (acknowledged questions still in
        their spool, questions the log once refused) put into it, not answered yet: before
        `db copy` moves the database, so the copy carries them."""
        self._left_over_prepared()

    def _left_over_prepared(self) -> None:
        try:
            moved = self.record_left_in_spool()
        except StorageError as error:  # left in the spool for the next start
            log.warning("spooled questions could not be recorded yet: %s", error)
        else:
            if moved:
                log.warning("recorded %d question(s) a stopped process had spooled", moved)
        unlogged = self.question_log.unlogged
        if unlogged.has_pending():  # kept questions mark their received ones as logged
            try:
                unlogged.replay(self.question_log.log_kept)
            except StorageError as error:
                log.warning("kept questions could not be logged yet: %s", error)

    async def _answer_left(self, answering: Answering, now: datetime | None) -> int:
        me = self.mark.hold()
        dead: dict[str, bool] = {}
        answered = 0
        for left in await self.worker.run(self.storage.unreplied):
            replier = answering.late_repliers.get(left.platform)
            if replier is None or left.taken_by == me:
                continue
            if left.taken_by not in dead:
                dead[left.taken_by] = not self.mark.running(left.taken_by)
            if not dead[left.taken_by] or not await self.worker.run(
                self.storage.take_received, left.id, me, left.taken_by
            ):
                continue
            try:
                await self._answer_late(answering, left, replier, now)
            except Exception:  # one question's failure must not stop the others
                log.exception("could not answer received question %s late", left.id)
                continue
            answered += 1
        if answered:
            log.warning("answered %d question(s) left unanswered by a stopped process", answered)
        return answered

    async def _answer_late(
        self,
        answering: Answering,
        left: ReceivedQuestion,
        replier: LateReplier,
        now: datetime | None,
    ) -> None:
        incoming = IncomingQuestion(
            text=left.text,
            platform=left.platform,
            asker=left.user_id,
            conversation=left.conversation,
            conversation_pseudonym=left.conversation_key,
        )
        reply = LateReply(
            kind=left.kind,
            address=ReplyAddress(left.platform, left.user_id, left.conversation),
            question=clean_text(left.text),
            late=(now or datetime.now(UTC)) - left.received_at > LATE_AFTER,
        )
        asked: Answer | None = None
        if left.kind == CHECK:
            try:
                reply = dataclasses.replace(
                    reply, check=await self.worker.run(answering.check_post, left.text)
                )
            except QuestionError as error:
                reply = dataclasses.replace(reply, refusal=str(error))
        elif left.state == LOGGED and left.question_id is not None:
            reply = await self.worker.run(_as_logged, answering, reply, left.question_id)
        else:
            try:
                asked = await answering.ask(incoming, received=left.id)
                reply = dataclasses.replace(reply, answer=asked)
            except QuestionError as error:
                reply = dataclasses.replace(reply, refusal=str(error))
            except Exception:  # logged as failed by `ask`; the asker gets the apology
                log.exception("answering received question %s failed", left.id)
        await replier.send(reply)
        await self.record_reply(left.id)
        if asked is not None:
            await answering.refer_unanswered(asked, incoming)


def _as_logged(answering: Answering, reply: LateReply, question_id: int) -> LateReply:
    try:
        logged = answering.logged_answer(question_id)
    except KeyError:  # purged since: nothing left to send but the apology
        return reply
    if logged.source == "refused":
        return dataclasses.replace(reply, refusal=logged.lead)
    if logged.source == "failed":
        return reply
    return dataclasses.replace(reply, answer=logged)
