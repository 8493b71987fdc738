"""The weekly summary for the policy team: what was asked, what is waiting, what the policy is
used for. Built from the question log; printed by `policybot digest` and posted to the
channels adapters register (see bot.notify.ChannelPoster)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.notify import ChannelPoster
from bot.review.groups import Group
from bot.review.queue import ReviewQueue
from bot.review.trends import (
    FROM_POLICY,
    KINDS,
    REVIEWED,
    CitedSection,
    WeekCounts,
    answer_kind,
    last_weeks,
    most_cited,
    weekly_counts,
)
from bot.store.database import Storage

#: How many groups and sections the digest lists at most.
TOP = 5
UNROUTED = "(no section close: anyone)"


@dataclass(frozen=True)
class Digest:
    since: datetime
    until: datetime
    asked: int  # questions in the period, refused ones not counted
    answered_from_policy: int
    answered_reviewed: int
    sent_to_review: int  # put on the review list (and still there or since resolved)
    refused: int
    open_groups: int
    new_groups_by_owner: dict[str, int]
    groups_answered: int  # answered by the policy team in the period
    groups_dismissed: int
    top_groups: tuple[Group, ...]
    cited: tuple[CitedSection, ...]
    #: The weeks the digest's chart shows, up to the week it ends in; () for no chart.
    weeks: tuple[WeekCounts, ...] = ()

    @property
    def period(self) -> str:
        """Which digest this is, for posting it once: the ISO week it ends in and its length
        (a digest of another length, run by hand, is a digest of its own)."""
        return f"{self.until:%G-W%V}/{(self.until - self.since).days}d"

    @property
    def answered_rate(self) -> float:
        """Share of the period's questions that got an answer: from the policy or reviewed."""
        answered = self.answered_from_policy + self.answered_reviewed
        return answered / self.asked if self.asked else 0.0

    @property
    def text(self) -> str:
        lines = [
            f"policybot weekly digest, {self.since:%Y-%m-%d} to {self.until:%Y-%m-%d} (UTC)",
            "",
            f"Questions: {self.asked} asked; {self.answered_from_policy} answered from the "
            f"policy, {self.answered_reviewed} with a reviewed answer, {self.sent_to_review} "
            f"sent to the policy team. Answered rate {self.answered_rate:.0%}.",
            f"Review list: {_count(self.open_groups, 'open group')}; in the period "
            f"{self.groups_answered} answered, {self.groups_dismissed} dismissed.",
            "",
            "New open groups by team:",
        ]
        if self.new_groups_by_owner:
            for owner, count in sorted(
                self.new_groups_by_owner.items(), key=lambda item: (-item[1], item[0])
            ):
                lines.append(f"  {owner or UNROUTED}: {count}")
        else:
            lines.append("  none")
        lines += ["", "Top open groups:"]
        if self.top_groups:
            for g in self.top_groups:
                where = f"{g.owner}, {g.reference}" if g.owner else UNROUTED
                lines.append(
                    f"  #{g.id}: {g.count} asked, last {g.last_seen[:10]} [{where}] “{g.sample}”"
                )
        else:
            lines.append("  none: the review list is empty")
        lines += ["", "Most cited sections:"]
        if self.cited:
            for c in self.cited:
                owner = f" ({c.owner})" if c.owner else ""
                lines.append(f"  {c.reference}{owner}: {c.count}")
        else:
            lines.append("  none")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(timespec="seconds"),
            "until": self.until.isoformat(timespec="seconds"),
            "asked": self.asked,
            "answered_from_policy": self.answered_from_policy,
            "answered_reviewed": self.answered_reviewed,
            "sent_to_review": self.sent_to_review,
            "refused": self.refused,
            "answered_rate": round(self.answered_rate, 4),
            "open_groups": self.open_groups,
            "new_groups_by_owner": self.new_groups_by_owner,
            "groups_answered": self.groups_answered,
            "groups_dismissed": self.groups_dismissed,
            "top_groups": [g.as_json() for g in self.top_groups],
            "most_cited": [
                {
                    "document": c.document,
                    "section": c.section,
                    "title": c.title,
                    "owner": c.owner,
                    "count": c.count,
                }
                for c in self.cited
            ],
            "weeks": [
                {"week": w.week, **{kind: w.count(kind) for kind in KINDS}} for w in self.weeks
            ],
        }


def build_digest(
    storage: Storage,
    review: ReviewQueue,
    *,
    now: datetime | None = None,
    days: int = 7,
    chart_weeks: int = 0,
) -> Digest:
    """The summary of the `days` up to `now`; with `chart_weeks`, the weekly counts of that
    many ISO weeks up to it, for the chart posted with it."""
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days)
    # The log keeps whole seconds; the end second is part of the period.
    start = since.isoformat(timespec="seconds")
    end = (until + timedelta(seconds=1)).isoformat(timespec="seconds")
    rows = storage.questions_between(since=start, until=end)
    refused = [r for r in rows if r.status == "refused"]
    asked = [r for r in rows if r.status != "refused"]
    reviewed = [r for r in asked if answer_kind(r) == REVIEWED]
    from_policy = [r for r in asked if answer_kind(r) == FROM_POLICY]
    # Answered but then marked Not helpful or escalated: counted as sent, not as answered.
    to_review = [r for r in asked if r.review_reason]
    from_policy = [r for r in from_policy if not r.review_reason]
    reviewed = [r for r in reviewed if not r.review_reason]

    groups = review.groups(status=None)
    open_groups = [g for g in groups if g.status == "open"]
    new_by_owner = Counter(g.owner for g in open_groups if start <= g.created_at < end)
    closed_in_period = [g for g in groups if g.status != "open" and start <= _closed(g) < end]

    return Digest(
        since=since,
        until=until,
        asked=len(asked),
        answered_from_policy=len(from_policy),
        answered_reviewed=len(reviewed),
        sent_to_review=len(to_review),
        refused=len(refused),
        open_groups=len(open_groups),
        new_groups_by_owner=dict(new_by_owner),
        groups_answered=sum(1 for g in closed_in_period if g.status == "answered"),
        groups_dismissed=sum(1 for g in closed_in_period if g.status == "dismissed"),
        top_groups=tuple(review.queue(status="open")[:TOP]),
        cited=most_cited(storage, asked, TOP),
        weeks=(
            weekly_counts(storage, *last_weeks(until.astimezone(UTC).date(), chart_weeks))
            if chart_weeks
            else ()
        ),
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _closed(group: Group) -> str:
    return group.answered_at if group.status == "answered" else group.closed_at


async def post_digest(
    text: str, posters: Mapping[str, ChannelPoster], weeks: Sequence[WeekCounts] = ()
) -> dict[str, str]:
    """Post to every registered channel (with the chart of `weeks`, if any); returns platform
    -> "posted" or why it failed, so one platform's outage never keeps the digest from the
    other."""
    results = {}
    for platform, poster in sorted(posters.items()):
        try:
            await poster.post(text, weeks)
        except Exception as error:  # any platform failure is reported, not raised
            results[platform] = f"failed: {type(error).__name__}: {error}"
        else:
            results[platform] = "posted"
    return results


#: What `post_digest_once` says for a platform another process posted to (or is posting to).
ALREADY_POSTED = "not posted: already posted for this period by another run"


async def post_digest_once(
    storage: Storage, digest: Digest, posters: Mapping[str, ChannelPoster]
) -> dict[str, str]:
    """`post_digest`, each platform's post claimed in the database first: however many
    replicas or cron jobs run `policybot digest`, each channel gets one digest per period.
    A post that failed gives up its claim, so the next run posts it."""
    claimant = secrets.token_hex(8)
    period = digest.period
    claimed = {
        platform: poster
        for platform, poster in posters.items()
        if storage.claim_digest(f"{period}/{platform}", claimant)
    }
    results = {platform: ALREADY_POSTED for platform in posters if platform not in claimed}
    for platform, outcome in (await post_digest(digest.text, claimed, digest.weeks)).items():
        storage.digest_posted(f"{period}/{platform}", claimant, posted=outcome == "posted")
        results[platform] = outcome
    return dict(sorted(results.items()))
