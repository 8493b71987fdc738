"""The rows the store returns, typed: what a column holds, its JSON decoded.

A column a writer may leave out (a refused question has no policy version, an extractive
answer no LLM model) is `None` when it was, as SQLite keeps it: exports and
`questions list --json` show it as they always did (empty, `null`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Self

#: The question log's columns that hold JSON lists.
JSON_LISTS = ("version_ids", "citations", "notes", "now_answered_citations")


@dataclass(frozen=True)
class QuestionRow:
    """One question of the log, every column in the table's order."""

    id: int
    asked_at: str
    platform: str
    asker: str  # a keyed pseudonym, or "" when the platform named nobody
    text: str
    answered: bool
    confidence: float
    version_ids: list[int]
    policy_version: str | None
    citations: list[dict[str, Any]]  # {clause_id, document, section}
    answer_text: str | None
    answer_source: str
    status: str  # answered | open | resolved | dismissed | refused
    feedback: str | None
    review_reason: str | None
    notes: list[str]
    answer_verdict: str | None
    llm_model: str | None
    llm_prompt_tokens: int | None
    llm_completion_tokens: int | None
    llm_latency_ms: int | None
    llm_attempts: int | None
    group_id: int | None
    closest_clause_id: int | None
    now_answered_version: int | None
    now_answered_at: str | None
    now_answered_confidence: float | None
    now_answered_citations: list[dict[str, Any]]  # as `citations`
    outcome: str  # answered | uncertain | not_covered (bot.answering.outcome.Outcome)
    feedback_comment: str | None  # what the asker wrote with a rating (Teams' feedback form)
    #: The question retrieval saw when it differs from `text` (a follow-up read with the
    #: conversation before it); None when it saw the question as asked.
    standalone: str | None
    conversation_key: str | None  # a keyed pseudonym of the conversation it was asked in

    @property
    def asked_as(self) -> str:
        """The question as the bot understood it: the standalone question, or as asked."""
        return self.standalone or self.text

    @classmethod
    def from_sql(cls, columns: Sequence[str], values: Sequence[Any]) -> Self:
        """A row as SQLite returns it (`SELECT *`, and for a subclass its own columns too)."""
        row = dict(zip(columns, values, strict=True))
        for key in JSON_LISTS:
            row[key] = json.loads(row[key]) if row.get(key) else []
        row["answered"] = bool(row["answered"])
        if not row.get("outcome"):
            # A writer that leaves it out (none of the bot's own) is read as m011 read the
            # rows before it: answered, or else not covered.
            row["outcome"] = "answered" if row["answered"] else "not_covered"
        return cls(**row)

    def as_json(self) -> dict[str, Any]:
        """Every column by name, in the table's order (then a subclass's): what
        `questions list --json` and `questions show --json` print."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True)
class RoutedQuestion(QuestionRow):
    """A logged question with its routing: the section and team of its group, or else of the
    clause it was closest to, and its group's state and reviewed answer ("" when none)."""

    owner: str
    closest_section: str
    closest_title: str
    group_status: str
    reviewed_answer: str
    reviewed_at: str


@dataclass(frozen=True)
class QuestionFact:
    """What the trends count of a logged question, without its text or asker: when it was
    asked, how it ended, the feedback, the sections cited and its review group."""

    id: int
    asked_at: str
    status: str
    outcome: str
    answer_source: str
    feedback: str
    citations: list[dict[str, Any]]
    group_id: int | None

    @classmethod
    def from_sql(cls, values: Sequence[Any]) -> Self:
        """A row of `QuestionLog.question_facts`, in `FACT_COLUMNS`' order."""
        row = dict(zip(FACT_COLUMNS, values, strict=True))
        row["citations"] = json.loads(row["citations"]) if row["citations"] else []
        if not row["outcome"]:
            row["outcome"] = "answered" if row.pop("answered") else "not_covered"
        row.pop("answered", None)
        row["answer_source"] = row["answer_source"] or ""
        row["feedback"] = row["feedback"] or ""
        return cls(**row)


#: The columns `QuestionFact.from_sql` reads (`answered` only for rows logged before m011).
FACT_COLUMNS = (
    "id",
    "asked_at",
    "status",
    "outcome",
    "answered",
    "answer_source",
    "feedback",
    "citations",
    "group_id",
)


@dataclass(frozen=True)
class PendingDelivery:
    """A resolved question's asker not yet sent its group's reviewed answer, and where to."""

    question_id: int
    text: str
    group_id: int
    answer: str
    answered_at: str
    platform: str
    user_id: str
    conversation: str | None
    attempts: int


@dataclass(frozen=True)
class ReviewAction:
    """One thing someone did to a review group (m016's `review_actions`), oldest first."""

    id: int
    group_id: int
    action: str  # answered | edited | dismissed | withdrawn
    actor: str  # as recorded: "Pat Policy (slack:U123)", or the CLI's --by
    acted_at: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}
