"""A review group and what resolving one yields: the group as stored, who owns it, the
reviewed answer's lead and the report of delivering it to askers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot import messages
from bot.review.grouping import TermProfile

#: The longest reviewed answer accepted, in characters.
MAX_ANSWER_CHARS = 4000


class ReviewError(ValueError):
    """A review action that cannot be done; the message is meant for the reviewer."""


@dataclass(frozen=True)
class Group:
    """A group of similar questions on the review list, as the policy team sees it."""

    id: int
    status: str
    count: int
    first_seen: str
    last_seen: str
    #: The question that started the group, shown as its sample.
    sample: str
    document: str
    section: str
    section_title: str
    owner: str
    answer: str
    answered_at: str
    answered_by: str
    created_at: str
    closed_at: str
    #: Why its questions are on the list: not_covered, uncertain, not_helpful, ask_policy_team.
    reasons: tuple[str, ...]
    profile: TermProfile = field(repr=False, compare=False)

    @property
    def reference(self) -> str:
        return " ".join(part for part in (self.section, self.section_title) if part)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Group:
        return cls(
            id=int(row["id"]),
            status=row["status"],
            count=int(row["count"] or 0),
            first_seen=row["first_seen"] or "",
            last_seen=row["last_seen"] or "",
            sample=row["label"] or "",
            document=row["document"] or "",
            section=row["section"] or "",
            section_title=row["section_title"] or "",
            owner=row["owner"] or "",
            answer=row["answer"] or "",
            answered_at=row["answered_at"] or "",
            answered_by=row["answered_by"] or "",
            created_at=row["created_at"] or "",
            closed_at=row["closed_at"] or "",
            reasons=tuple(sorted({r for r in (row.get("reasons") or "").split(",") if r})),
            profile=TermProfile.from_json(row["signature"] or {}),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "owner": self.owner,
            "section": self.section,
            "section_title": self.section_title,
            "document": self.document,
            "sample": self.sample,
            "reasons": list(self.reasons),
            "answer": self.answer,
            "answered_at": self.answered_at,
            "answered_by": self.answered_by,
        }


def owner_matches(wanted: str, owner: str) -> bool:
    """`--owner` accepts the team's name or its initials ("HR" for Human Resources);
    "unrouted" is the queue of groups no section is close to."""
    wanted = wanted.strip().lower()
    if wanted in {"unrouted", "none", "-"}:
        return not owner
    initials = "".join(word[0] for word in owner.lower().split() if word)
    return wanted in {owner.lower(), initials}


@dataclass(frozen=True)
class DeliveryReport:
    """What became of sending a reviewed answer to the people who asked."""

    sent: int = 0
    failed: int = 0
    #: platform -> askers waiting because no notifier for that platform is registered here.
    waiting: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.failed + sum(self.waiting.values())

    def describe(self) -> str:
        text = f"{self.sent} sent, {self.pending} pending"
        reasons = [f"{n} failed, kept for retry" for n in [self.failed] if n]
        reasons += [
            f"{n} on {platform}: no notifier here" for platform, n in sorted(self.waiting.items())
        ]
        return text + (f" ({'; '.join(reasons)})" if reasons else "")


def delivery_text(question: str, answer: str, answered_at: str) -> str:
    return messages.reviewed_answer_to_asker(question, answer, answered_at)


def reviewed_lead(group: Group) -> str:
    return messages.reviewed_lead(group.answer, group.answered_at)
