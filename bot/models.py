"""The neutral types every part of the bot speaks: what comes in, what is stored, what goes out."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from bot.answering.outcome import Outcome
from bot.messages import taking_as


@dataclass(frozen=True)
class Block:
    """One structural piece of a policy document, whatever format it came in."""

    kind: str  # "heading", "paragraph", "item" (list item) or "row" (table row)
    text: str
    level: int = 0  # heading depth (1 = title) or list nesting depth
    line: int = 0  # 1-based line in the source where the block starts
    end_line: int = 0


@dataclass(frozen=True)
class Clause:
    """A citable unit of policy: a sentence to a short paragraph, with where it stands."""

    text: str
    section: str  # the section number as written, e.g. "4.2"; "" when the source has none
    section_title: str  # e.g. "Confidential information"
    heading_path: tuple[str, ...] = ()  # every heading above the clause, outermost first
    owner: str = ""
    ordinal: int = 0
    line_start: int = 0
    line_end: int = 0

    @property
    def reference(self) -> str:
        """How an answer cites the clause: "4.2 Confidential information"."""
        return " ".join(part for part in (self.section, self.section_title) if part)


@dataclass(frozen=True)
class ParsedPolicy:
    """A policy document read into clauses, not yet stored."""

    name: str
    title: str
    version_label: str
    owners: tuple[str, ...]
    clauses: tuple[Clause, ...]


@dataclass(frozen=True)
class StoredClause:
    """A clause as retrieval and answers see it: the clause plus its identity in storage."""

    id: int
    version_id: int
    document: str
    clause: Clause
    document_title: str = ""  # the title of the version the clause belongs to


@dataclass(frozen=True)
class ScoredClause:
    stored: StoredClause
    score: float


@dataclass(frozen=True)
class Retrieval:
    """Ranked clauses for a question and how sure retrieval is that the policy covers it."""

    question: str
    ranked: tuple[ScoredClause, ...]
    confidence: float
    version_ids: tuple[int, ...]


@dataclass(frozen=True)
class IncomingQuestion:
    """A question as any platform hands it to the core."""

    text: str
    platform: str = "cli"
    asker: str = ""  # platform user id, kept for replying; never shown to the policy team
    conversation: str = ""  # where to reply (channel, thread, conversation reference)
    asker_name: str = ""
    #: The conversation it continues, as the platform names it (a Slack channel and thread,
    #: a Teams conversation and reply chain, a console session); "" for a question that
    #: stands alone (a slash command, the CLI). Logged only as a keyed pseudonym.
    conversation_key: str = ""
    #: The same conversation as the log already names it (its pseudonym), for a question
    #: whose platform key was not kept: one answered after a restart, from its received row.
    #: Used in place of `conversation_key` when set.
    conversation_pseudonym: str = ""


@dataclass(frozen=True)
class Actor:
    """Someone changing something through a platform (an admin, a reviewer): checked by their
    platform id (a Slack user id, a Teams AAD object id), recorded by name and id."""

    platform: str
    user_id: str
    name: str = ""

    @property
    def recorded_as(self) -> str:
        """ "Pat Policy (teams:aad-pat)", or "slack:U123" without a name (names repeat)."""
        reference = f"{self.platform}:{self.user_id or 'unknown'}"
        return f"{self.name} ({reference})" if self.name else reference


@dataclass(frozen=True)
class Citation:
    clause_id: int
    document: str
    section: str
    title: str
    text: str
    score: float
    owner: str = ""
    document_title: str = ""  # e.g. "Acme Social Media Policy"; `document` is its short name

    @property
    def reference(self) -> str:
        return " ".join(part for part in (self.section, self.title) if part)

    def as_json(self) -> dict[str, Any]:
        return {
            "clause_id": self.clause_id,
            "document": self.document,
            "document_title": self.document_title or self.document,
            "section": self.section,
            "title": self.title,
            "text": self.text,
            "score": round(self.score, 4),
        }

    def as_logged(self) -> dict[str, Any]:
        """What the question log keeps of a citation; the clause itself is read by its id."""
        return {"clause_id": self.clause_id, "document": self.document, "section": self.section}


#: How a grounded answer's verdict opens it in plain text.
VERDICT_HEADLINES = {
    "allowed": "Yes, allowed.",
    "not_allowed": "No, not allowed.",
    "depends": "It depends.",
    "not_covered": "Not covered by the policy.",
}


@dataclass(frozen=True)
class Answer:
    """What the core returns for a question; adapters render it for their platform."""

    question: str
    #: Answered (the clauses answer it), uncertain (the closest clauses, possibly not what was
    #: asked; the question is with the policy team) or not covered: the one source of truth.
    outcome: Outcome
    lead: str
    citations: tuple[Citation, ...]
    confidence: float
    question_id: int | None = None
    policy_version: str = ""
    source: str = "extractive"  # "extractive", "llm" or "reviewed"
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: allowed, not_allowed, depends or not_covered for an LLM answer; "" for extractive ones.
    verdict: str = ""
    #: The question as the bot understood it when that differs from what was asked (a
    #: follow-up read with the conversation before it); "" when it was taken as asked.
    asked_as: str = ""

    @property
    def taken_as(self) -> str:
        """ "Taking this as: …" for an answer to a follow-up read in context; "" otherwise."""
        return taking_as(self.asked_as) if self.asked_as else ""

    @property
    def answered(self) -> bool:
        """Whether the policy answers the question with confidence (or the policy team did)."""
        return self.outcome is Outcome.ANSWERED

    @property
    def uncertain(self) -> bool:
        return self.outcome is Outcome.UNCERTAIN

    @property
    def text(self) -> str:
        return self.lead

    @property
    def headline(self) -> str:
        """The verdict in words ("It depends."), for rendering above the lead; "" if none."""
        return VERDICT_HEADLINES.get(self.verdict, "")

    def plain_text(self, width: int = 0) -> str:
        """The answer as plain text: the lead, then each clause quoted under its reference.

        Platforms with richer formats render the fields themselves; this is the fallback
        (terminals, notifications).
        """
        lead = f"{self.headline} {self.lead}" if self.headline and self.answered else self.lead
        lines = [self.taken_as, lead] if self.taken_as else [lead]
        several_documents = len({x.document for x in self.citations}) > 1
        for c in self.citations:
            document = c.document_title or c.document
            where = f"{document}, {c.reference}" if several_documents else c.reference
            lines.append("")
            lines.append(f"  [{where}]")
            text = c.text
            if width > 8:
                lines.extend(
                    textwrap.wrap(
                        f"“{text}”", width - 4, initial_indent="    ", subsequent_indent="    "
                    )
                )
            else:
                lines.append(f"    “{text}”")
        if self.citations and not several_documents:
            # Answers cite the document as well as the section: one document, named once.
            lines.append("")
            lines.append(f"  — {self.citations[0].document_title or self.citations[0].document}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "outcome": self.outcome.value,
            "answered": self.answered,
            "confidence": round(self.confidence, 4),
            "text": self.lead,
            "citations": [c.as_json() for c in self.citations],
            "question_id": self.question_id,
            "policy_version": self.policy_version,
            "source": self.source,
            "verdict": self.verdict,
            "asked_as": self.asked_as or self.question,
        }


class PolicyError(ValueError):
    """A policy document that cannot be used; the message is meant for the person uploading it."""


class QuestionError(ValueError):
    """A question the bot cannot take (empty, too long); the message is meant for the asker."""
