"""What a screen of the review queue shows (the web console's queue and group pages): the
groups under a filter, busiest first, with sample questions and counts per status; one group
with every question, its reasons and its audit trail; an answer's preview as the askers will
read it. Reads only: resolving goes through `PolicyBot.resolve_group` like every platform."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

from bot import messages
from bot.redaction import Redactor
from bot.review.groups import Group, ReviewError, delivery_text, owner_matches
from bot.review.queue import ReviewQueue, clean_answer
from bot.store.database import ReviewAction, Storage, utcnow

#: The statuses a group can have, in the order a filter offers them ("" is all of them).
STATUSES = ("open", "answered", "dismissed")
#: Sample questions shown per group in the queue, beside the one that started it.
SAMPLES_PER_GROUP = 3
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(text: str, name: str) -> str:
    """A YYYY-MM-DD date from a filter, or "" for none; ReviewError saying what is wrong."""
    text = (text or "").strip()
    if not text:
        return ""
    if not _DAY.match(text):
        raise ReviewError(messages.unreadable_filter_date(name, text))
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ReviewError(messages.unreadable_filter_date(name, text)) from None
    return text


@dataclass(frozen=True)
class QueueFilter:
    """Which groups a queue screen lists: a team (its name or initials, or "unrouted"), a
    status ("" for every status) and the days their questions were asked (inclusive)."""

    owner: str = ""
    status: str = "open"
    since: str = ""
    until: str = ""

    @classmethod
    def parse(
        cls, *, owner: str = "", status: str = "open", since: str = "", until: str = ""
    ) -> QueueFilter:
        """A filter as a form sends it; ReviewError for a status or date it cannot mean."""
        status = (status or "").strip().lower()
        if status in {"all", "any"}:
            status = ""
        if status and status not in STATUSES:
            raise ReviewError(messages.unknown_group_status(status, STATUSES))
        first, last = _day(since, "from"), _day(until, "to")
        if first and last and first > last:
            raise ReviewError(messages.filter_dates_reversed(first, last))
        return cls((owner or "").strip(), status, first, last)

    def admits(self, group: Group, *, status: bool = True) -> bool:
        """Whether the group passes (`status`: the status filter counts too)."""
        if status and self.status and group.status != self.status:
            return False
        if self.owner and not owner_matches(self.owner, group.owner):
            return False
        if self.since and group.last_seen[:10] < self.since:
            return False
        return not (self.until and group.first_seen[:10] > self.until)


@dataclass(frozen=True)
class QueueEntry:
    group: Group
    #: A few of its questions, earliest first (the first is the group's sample).
    samples: tuple[str, ...]


@dataclass(frozen=True)
class QueueView:
    """The groups a filter admits, busiest first, and how many groups of each status the
    other filters (team, dates) admit, for the counts beside the status filter."""

    filter: QueueFilter
    entries: tuple[QueueEntry, ...]
    counts: dict[str, int]
    #: Every team a group is routed to, for the team filter's choices.
    teams: tuple[str, ...]


def queue_view(queue: ReviewQueue, storage: Storage, wanted: QueueFilter) -> QueueView:
    every = queue.queue(status=None)
    counts = Counter(g.status for g in every if wanted.admits(g, status=False))
    shown = [g for g in every if wanted.admits(g)]
    samples = storage.group_samples([g.id for g in shown], SAMPLES_PER_GROUP)
    return QueueView(
        filter=wanted,
        entries=tuple(
            QueueEntry(g, tuple(samples.get(g.id) or ([g.sample] if g.sample else [])))
            for g in shown
        ),
        counts={status: counts.get(status, 0) for status in STATUSES},
        teams=tuple(sorted({g.owner for g in every if g.owner})),
    )


@dataclass(frozen=True)
class MemberQuestion:
    """A question of a group as the policy team sees it: the asker as a pseudonym, or by
    name when POLICYBOT_SHOW_ASKERS=1 and the name is still kept."""

    id: int
    asked_at: str
    platform: str
    asker: str
    text: str
    outcome: str
    #: Why it is on the list: not_covered, uncertain, not_helpful, ask_policy_team.
    reason: str
    status: str
    comment: str


@dataclass(frozen=True)
class GroupView:
    group: Group
    questions: tuple[MemberQuestion, ...]
    #: Who did what to it, when, oldest first.
    actions: tuple[ReviewAction, ...]


def group_view(
    queue: ReviewQueue,
    storage: Storage,
    group_id: int,
    *,
    show_askers: bool,
    redactor: Redactor,
) -> GroupView:
    """ReviewError when there is no such group."""
    group = queue.group(group_id)
    members = queue.members(group_id)
    names = storage.asker_names(m.id for m in members) if show_askers else {}
    questions = []
    for member in members:
        # Rows logged before secrets were scrubbed on the way in may still hold one.
        row = redactor.scrub_row(member.as_json())
        questions.append(
            MemberQuestion(
                id=member.id,
                asked_at=member.asked_at,
                platform=member.platform,
                asker=names.get(member.id) or member.asker or "",
                text=str(row["text"] or ""),
                outcome=member.outcome,
                reason=member.review_reason or "",
                status=member.status,
                comment=str(row.get("feedback_comment") or ""),
            )
        )
    return GroupView(group, tuple(questions), tuple(queue.actions(group_id)))


def answer_preview(group: Group, text: str) -> str:
    """What an asker of the group would be sent for this answer, word for word as the
    notifiers send it (the group's sample standing in for each asker's own question);
    ReviewError for an answer `resolve_group` would refuse (empty, too long)."""
    return delivery_text(group.sample, clean_answer(text), utcnow())
