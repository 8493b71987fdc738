"""What the core's use cases (`PolicyBot`'s adapter-facing methods) hand back to a platform.

Each is a plain value an adapter renders: the text to show, and what it needs to redraw its
message (a version's id, a group). No use case returns an exception for the user's mistakes:
a refusal is a text like any other, worded once in bot.messages.

It also names what an adapter needs to render those values and to call the use cases
(`UploadResult` and its `ChangeSummary`, `Group`, `MAX_ANSWER_CHARS`, ACTIVATE / DISCARD /
RETIRE), so an adapter imports them from here and never from bot.policies or bot.review.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot import messages
from bot.changes import ADDED, REMOVED, ChangeSummary
from bot.policies import ACTIVATE, DISCARD, RETIRE, UploadResult
from bot.review.groups import MAX_ANSWER_CHARS, DeliveryReport, Group, ReviewError
from bot.review.trends import (
    KIND_LABELS,
    KINDS,
    NO_SECTION,
    TABLES,
    CitedSection,
    RecurringTopic,
    SectionFeedback,
    Trends,
    WeekCounts,
    table,
    table_csv,
)
from bot.review.views import STATUSES as GROUP_STATUSES
from bot.review.views import QueueFilter
from bot.store.database import VersionInfo

__all__ = [
    "ACTIVATE",
    "ADDED",
    "DISCARD",
    "GROUP_STATUSES",
    "KINDS",
    "KIND_LABELS",
    "MAX_ANSWER_CHARS",
    "NO_SECTION",
    "REMOVED",
    "RETIRE",
    "TABLES",
    "ChangeSummary",
    "CitedSection",
    "DeliveryReport",
    "Fetch",
    "Fetched",
    "Group",
    "QueueFilter",
    "Recheck",
    "RecurringTopic",
    "Resolution",
    "ReviewError",
    "ReviewList",
    "SectionFeedback",
    "Settled",
    "Shown",
    "TeamGroup",
    "Tell",
    "Trends",
    "TrendsReply",
    "UploadReply",
    "UploadResult",
    "VersionInfo",
    "WeekCounts",
    "table",
    "table_csv",
]

#: How a use case says something to the person acting, when it must say it before doing
#: more (an answer's confirmation before the review channel is told, say).
Tell = Callable[[str], Awaitable[None]]
#: Whether the actor belongs to the platform's policy-team group (Slack's user group); asked
#: only for someone not listed in POLICYBOT_<PLATFORM>_POLICY_TEAM.
TeamGroup = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Fetched:
    """A file's bytes, with its name when the platform learns the name only while fetching
    (a Slack `file_shared` event carries only the file's id)."""

    name: str
    data: bytes


#: Fetches an upload's bytes: called only once the uploader is known to be an admin. Raises
#: PolicyError with the uploader's message when the platform cannot hand the file over.
Fetch = Callable[[], Awaitable["bytes | Fetched"]]


@dataclass(frozen=True)
class UploadReply:
    """What an uploader is shown: the stored version's change summary, or why there is none."""

    result: UploadResult | None
    refusal: str = ""


@dataclass(frozen=True)
class Settled:
    """Activate / Discard / Retire pressed under an upload: the version (None when refused) and the
    sentence to show."""

    version: VersionInfo | None
    text: str


@dataclass(frozen=True)
class Resolution:
    """A group answered or dismissed, or why not (`group` None: refused, stale, a bad
    answer; nothing changed). `text` is what the reviewer is told either way."""

    text: str
    group: Group | None = None
    #: For an answer: what became of sending it to the askers.
    report: DeliveryReport | None = None

    @property
    def done(self) -> bool:
        return self.group is not None


@dataclass(frozen=True)
class TrendsReply:
    """The trends of a date range for someone on the policy team; else why not: `refusal`
    for someone who may not see them, `problem` for a range that cannot be read."""

    trends: Trends | None
    refusal: str = ""
    problem: str = ""


@dataclass(frozen=True)
class ReviewList:
    """The open groups, busiest first, for someone on the policy team; else why not."""

    groups: tuple[Group, ...] | None
    refusal: str = ""


_Value = TypeVar("_Value")


@dataclass(frozen=True)
class Shown(Generic[_Value]):
    """What a screen reads (the web console's queue, a group, the policy pages), or why it
    may not (`value` None, `refusal` the text to show; `forbidden` when it is the reader's
    role that stops them, not their input)."""

    value: _Value | None
    refusal: str = ""
    forbidden: bool = False


@dataclass
class Recheck:
    """Open unanswered questions re-checked in the background after an activation, a
    retirement or a rollback (`PolicyBot.recheck`): how far it got, for `/healthz` and the
    admin who activated."""

    total: int
    done: int = 0
    now_answered: int = 0
    finished: bool = False

    def as_text(self) -> str:
        return messages.rechecked(self.done, self.total, self.now_answered)

    def as_json(self) -> dict[str, int | bool]:
        return {
            "open_questions": self.total,
            "rechecked": self.done,
            "now_answered": self.now_answered,
            "finished": self.finished,
        }
