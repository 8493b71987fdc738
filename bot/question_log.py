"""The question log as the core writes it: every question asked, answered, refused or failed,
one row each, scrubbed of secrets; when the database refuses the write, kept beside it
(`bot.store.unlogged`) and logged once it takes writes again. An open question joins the
review list as it is logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.answering.extractive import Draft
from bot.answering.outcome import Outcome
from bot.models import Answer, IncomingQuestion, Retrieval
from bot.redaction import Redactor
from bot.retrieval.active import ActivePolicy
from bot.review.groups import Group
from bot.review.queue import ReviewQueue
from bot.store.database import Storage, StorageError, utcnow
from bot.store.unlogged import Entry, UnloggedQuestions
from bot.text import clean_text

log = logging.getLogger(__name__)


@dataclass
class QuestionLog:
    storage: Storage
    review: ReviewQueue
    unlogged: UnloggedQuestions
    redactor: Redactor
    #: A refused question is logged cut to this length (it may be what was refused).
    max_question_chars: int

    def answered(
        self,
        incoming: IncomingQuestion,
        question: str,
        retrieval: Retrieval,
        draft: Draft,
        active: ActivePolicy,
        reviewed: Group | None = None,
        received: int | None = None,
        standalone: str = "",
    ) -> Answer:
        """`standalone`: what retrieval saw, when not the question as asked."""
        policy_version = active.policy_version(draft.citations)
        question_id = self.record(
            incoming,
            {
                "platform": incoming.platform,
                "text": question,
                "answered": int(draft.answered),
                "outcome": draft.outcome.value,
                "confidence": round(retrieval.confidence, 4),
                "version_ids": list(retrieval.version_ids),
                "policy_version": policy_version,
                "citations": [c.as_logged() for c in draft.citations],
                "answer_text": draft.lead,
                "answer_source": draft.source,
                "status": "open" if draft.outcome.reviewed else "answered",
                "feedback": "",
                # Uncertain or not covered: on the review list, for that reason.
                "review_reason": draft.outcome.value if draft.outcome.reviewed else "",
                "notes": list(draft.notes),
                "answer_verdict": draft.verdict,
                "llm_model": draft.llm.model if draft.llm else None,
                "llm_prompt_tokens": draft.llm.prompt_tokens if draft.llm else None,
                "llm_completion_tokens": draft.llm.completion_tokens if draft.llm else None,
                "llm_latency_ms": draft.llm.latency_ms if draft.llm else None,
                "llm_attempts": draft.llm.attempts if draft.llm else None,
                "closest_clause_id": retrieval.ranked[0].stored.id if retrieval.ranked else None,
                "group_id": reviewed.id if reviewed else None,
                "standalone": standalone or None,
                "conversation_key": incoming.conversation_key or None,
            },
            received,
        )
        return Answer(
            question=question,
            outcome=draft.outcome,
            lead=draft.lead,
            citations=draft.citations,
            confidence=retrieval.confidence,
            question_id=question_id,
            policy_version=policy_version,
            source=draft.source,
            notes=draft.notes,
            verdict=draft.verdict,
            asked_as=standalone,
        )

    def refused(self, incoming: IncomingQuestion, reason: str, received: int | None = None) -> None:
        text = clean_text(incoming.text)
        if not text:
            return  # nothing was asked
        self.record(
            incoming,
            {
                "platform": incoming.platform,
                "text": text[: self.max_question_chars],
                "answered": 0,
                "outcome": Outcome.NOT_COVERED.value,
                "confidence": 0.0,
                "status": "refused",
                "review_reason": "",
                "answer_text": reason,
                "answer_source": "refused",
            },
            received,
        )

    def failed(
        self,
        incoming: IncomingQuestion,
        question: str,
        error: Exception,
        received: int | None = None,
    ) -> int | None:
        try:
            question_id = self.record(
                incoming,
                {
                    "platform": incoming.platform,
                    "text": question,
                    "answered": 0,
                    "outcome": Outcome.NOT_COVERED.value,
                    "confidence": 0.0,
                    "status": "open",
                    "review_reason": "failed",
                    # Scrubbed before the cut, which could leave half a secret otherwise.
                    "notes": [
                        self.redactor.scrub(f"failed: {type(error).__name__}: {error}")[:500]
                    ],
                    "answer_source": "failed",
                    "conversation_key": incoming.conversation_key or None,
                },
                received,
            )
            if question_id is not None:
                # Into a group, as every open question is, so the review list shows it. Not
                # routed by retrieval: retrieval may be what failed.
                self.review.join(question_id, question, Retrieval(question, (), 0.0, ()))
            return question_id
        except Exception:  # the original failure is the one to report
            log.exception("could not log a question that failed")
            return None

    def record(
        self, incoming: IncomingQuestion, record: dict[str, object], received: int | None = None
    ) -> int | None:
        """Log a question; its id, or None when the database refused the write (the question
        is then kept by `unlogged` and logged later, and the asker still gets the answer)."""
        entry: Entry = {
            "record": {"asked_at": utcnow(), **self.redactor.scrub_row(record)},
            "asker": incoming.asker,
            "reply_to": self._reply_address(incoming),
            "asker_name": incoming.asker_name,
            "received": received,
        }
        if incoming.conversation_pseudonym:
            entry["conversation_pseudonym"] = incoming.conversation_pseudonym
        try:
            if self.unlogged.has_pending():
                self.unlogged.replay(self.log_kept)
            return self._log_entry(entry)
        except StorageError as error:
            self.unlogged.keep(entry, error)
            return None

    def _log_entry(self, entry: Entry) -> int:
        record = dict(entry["record"])
        record["asker"] = self.storage.pseudonym(record["platform"], entry["asker"])
        named = entry.get("conversation_pseudonym")
        if named and "conversation_key" in record:  # a row kind that records its conversation
            record["conversation_key"] = named
        elif record.get("conversation_key"):
            # The platform's thread ids stay out of the log, as the asker's do.
            record["conversation_key"] = self.conversation_pseudonym(
                record["platform"], record["conversation_key"]
            )
        return self.storage.log_question(
            record,
            reply_to=entry["reply_to"],
            asker_name=entry["asker_name"],
            received_id=entry.get("received"),
        )

    def log_kept(self, entries: list[Entry]) -> None:
        with self.storage.transaction():
            ids = [(self._log_entry(entry), entry) for entry in entries]
        for question_id, entry in ids:
            record = entry["record"]
            if record.get("status") == "open":  # it belongs on the review list, as it would have
                self.review.join(question_id, str(record["text"]))

    def conversation_pseudonym(self, platform: str, key: str) -> str:
        """The conversation as the log names it: keyed, so its platform ids cannot be read
        back, and apart from any asker's pseudonym."""
        return self.storage.pseudonym(platform, key, kind="conversation")

    def conversation_of(self, incoming: IncomingQuestion) -> str:
        """The pseudonym of the conversation `incoming` continues; "" when it names none."""
        if incoming.conversation_pseudonym:
            return incoming.conversation_pseudonym
        if not incoming.conversation_key:
            return ""
        return self.conversation_pseudonym(incoming.platform, incoming.conversation_key)

    def conversation_turns(
        self, incoming: IncomingQuestion, since: str, limit: int
    ) -> list[tuple[str, str | None]]:
        """The asker's own earlier turns in the conversation `incoming` continues, oldest
        first; none when it names no conversation or no asker."""
        conversation = self.conversation_of(incoming)
        if not conversation or not incoming.asker:
            return []
        return self.storage.conversation_turns(
            conversation,
            self.storage.pseudonym(incoming.platform, incoming.asker),
            since,
            limit,
        )

    @staticmethod
    def _reply_address(incoming: IncomingQuestion) -> dict[str, str] | None:
        if not incoming.asker:
            return None
        return {
            "platform": incoming.platform,
            "user_id": incoming.asker,
            "conversation": incoming.conversation,
        }
