"""What employees ask over time, for the policy team's trend pages and the digest's chart:
questions per ISO week (UTC) by how they were answered, the answered rate, the most cited
sections, the topics that keep coming back uncovered and the feedback per section.

The counting rules are the digest's (`answer_kind`, `most_cited`), so a week here and a week
in the digest count a question the same way."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from bot import messages
from bot.review.export import write_csv
from bot.review.groups import ReviewError
from bot.review.queue import ReviewQueue
from bot.store.database import QuestionFact, Storage

#: How a question was answered, in the order charts stack them.
FROM_POLICY = "from_policy"
REVIEWED = "reviewed"
UNCERTAIN = "uncertain"
NOT_COVERED = "not_covered"
KINDS = (FROM_POLICY, REVIEWED, UNCERTAIN, NOT_COVERED)
KIND_LABELS = {
    FROM_POLICY: "Answered from the policy",
    REVIEWED: "Reviewed answer",
    UNCERTAIN: "Uncertain",
    NOT_COVERED: "Not covered",
}

#: The longest range the trends cover: two years of weeks keep a chart readable.
MAX_WEEKS = 104
#: The range when none is asked for: the last twelve weeks, this one included.
DEFAULT_WEEKS = 12
#: How many sections and topics the lists show at most.
TOP_SECTIONS = 10
TOP_TOPICS = 10
#: Where feedback on an answer that cites no section (a reviewed answer) is counted.
NO_SECTION = "(no section cited: reviewed answers)"


class Logged(Protocol):
    """What the counting reads of a logged question (a `QuestionRow` or a `QuestionFact`)."""

    @property
    def status(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def answer_source(self) -> str: ...
    @property
    def citations(self) -> list[dict[str, Any]]: ...


def answer_kind(row: Logged) -> str | None:
    """How a question was answered when it was asked; None for a refused one (nothing asked)."""
    if row.status == "refused":
        return None
    if row.answer_source == REVIEWED:
        return REVIEWED
    if row.outcome == "answered":
        return FROM_POLICY
    if row.outcome == UNCERTAIN:
        return UNCERTAIN
    # Not covered, and questions whose answering failed (logged as not covered).
    return NOT_COVERED


@dataclass(frozen=True)
class CitedSection:
    document: str
    section: str
    title: str
    owner: str
    count: int

    @property
    def reference(self) -> str:
        return " ".join(part for part in (self.section, self.title) if part)


def section_keys(row: Logged) -> dict[tuple[str, str], int]:
    """The sections a question's answer cited, once each, with a clause of each."""
    return {(c["document"], c["section"]): c["clause_id"] for c in row.citations}


def _section_details(
    storage: Storage, clause_of: dict[tuple[str, str], int]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(title, owner) of each section, from the clause it was cited by."""
    clauses = storage.clauses_by_id(clause_of.values())
    details = {}
    for key, clause_id in clause_of.items():
        stored = clauses.get(clause_id)
        details[key] = (stored.clause.section_title, stored.clause.owner) if stored else ("", "")
    return details


def most_cited(storage: Storage, rows: Iterable[Logged], top: int) -> tuple[CitedSection, ...]:
    """The sections cited by most questions (each counted once per question), most first."""
    cited: Counter[tuple[str, str]] = Counter()
    clause_of: dict[tuple[str, str], int] = {}
    for row in rows:
        for key, clause_id in section_keys(row).items():
            cited[key] += 1
            clause_of.setdefault(key, clause_id)
    ranked = sorted(cited.items(), key=lambda i: (-i[1], i[0]))[:top]
    details = _section_details(storage, {key: clause_of[key] for key, _ in ranked})
    return tuple(
        CitedSection(document, section, *details[(document, section)], count)
        for (document, section), count in ranked
    )


@dataclass(frozen=True)
class WeekCounts:
    """One ISO week's questions by how they were answered."""

    week: str  # ISO week, "2026-W05"
    monday: date
    from_policy: int = 0
    reviewed: int = 0
    uncertain: int = 0
    not_covered: int = 0

    def count(self, kind: str) -> int:
        return int(getattr(self, kind))

    @property
    def asked(self) -> int:
        return self.from_policy + self.reviewed + self.uncertain + self.not_covered

    @property
    def answered(self) -> int:
        return self.from_policy + self.reviewed

    @property
    def answered_rate(self) -> float | None:
        """Share of the week's questions answered (from the policy or reviewed); None for a
        week nobody asked in, which has no rate (not 0%)."""
        return self.answered / self.asked if self.asked else None


@dataclass(frozen=True)
class RecurringTopic:
    """A review group whose questions came in several weeks of the range."""

    group_id: int
    status: str
    sample: str
    reference: str
    owner: str
    questions: int
    weeks: int
    first_week: str
    last_week: str


@dataclass(frozen=True)
class SectionFeedback:
    document: str
    section: str
    title: str
    helpful: int
    not_helpful: int

    @property
    def reference(self) -> str:
        return " ".join(part for part in (self.section, self.title) if part) or NO_SECTION


@dataclass(frozen=True)
class Trends:
    since: date  # first day, inclusive
    until: date  # last day, inclusive
    weeks: tuple[WeekCounts, ...]
    cited: tuple[CitedSection, ...]
    recurring: tuple[RecurringTopic, ...]
    feedback: tuple[SectionFeedback, ...]
    refused: int

    @property
    def asked(self) -> int:
        return sum(w.asked for w in self.weeks)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def date_range(since: str = "", until: str = "", *, today: date | None = None) -> tuple[date, date]:
    """The first and last day (inclusive) asked for, as YYYY-MM-DD; by default the last
    `DEFAULT_WEEKS` ISO weeks up to today. ReviewError, worded for the reader, otherwise."""
    last = _day(until, "to") if until.strip() else (today or datetime.now(UTC).date())
    if since.strip():
        first = _day(since, "from")
    else:
        first, _ = last_weeks(last, DEFAULT_WEEKS)
    if first > last:
        raise ReviewError(messages.trends_range_reversed(str(first), str(last)))
    if (last - first).days // 7 + 1 > MAX_WEEKS:
        raise ReviewError(messages.trends_range_too_long(MAX_WEEKS))
    return first, last


def _day(text: str, which: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReviewError(messages.trends_unreadable_date(which, text.strip())) from None


def _bounds(since: date, until: date) -> tuple[str, str]:
    """Whole UTC days from `since` to `until` as the log's ISO times, [start, end)."""
    start = datetime.combine(since, datetime.min.time(), UTC)
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC)
    return start.isoformat(timespec="seconds"), end.isoformat(timespec="seconds")


def _weeks(
    asked: Iterable[tuple[QuestionFact, str]], since: date, until: date
) -> tuple[WeekCounts, ...]:
    """Every ISO week touching the range, empty ones included (a chart must show them)."""
    per_week: dict[str, Counter[str]] = defaultdict(Counter)
    for fact, kind in asked:
        per_week[iso_week(_asked_day(fact.asked_at))][kind] += 1
    weeks = []
    monday = since - timedelta(days=since.weekday())
    while monday <= until:
        counts = per_week.get(iso_week(monday), Counter())
        weeks.append(WeekCounts(iso_week(monday), monday, **{k: counts[k] for k in KINDS}))
        monday += timedelta(weeks=1)
    return tuple(weeks)


def _asked(facts: Iterable[QuestionFact]) -> list[tuple[QuestionFact, str]]:
    return [(f, kind) for f in facts if (kind := answer_kind(f)) is not None]


def weekly_counts(storage: Storage, since: date, until: date) -> tuple[WeekCounts, ...]:
    """Only the weekly counts (the digest's chart)."""
    return _weeks(_asked(storage.question_facts(*_bounds(since, until))), since, until)


def last_weeks(until: date, count: int) -> tuple[date, date]:
    """The `count` ISO weeks up to `until`, this one included: (its first Monday, `until`)."""
    monday = until - timedelta(days=until.weekday())
    return monday - timedelta(weeks=count - 1), until


def build_trends(storage: Storage, review: ReviewQueue, since: date, until: date) -> Trends:
    """The trends of the questions asked from `since` to `until` (whole UTC days)."""
    facts = storage.question_facts(*_bounds(since, until))
    asked = _asked(facts)
    return Trends(
        since=since,
        until=until,
        weeks=_weeks(asked, since, until),
        cited=most_cited(storage, (f for f, _ in asked), TOP_SECTIONS),
        recurring=_recurring(review, [(f.asked_at, f.group_id, kind) for f, kind in asked]),
        feedback=_feedback(storage, [f for f, _ in asked if f.feedback]),
        refused=len(facts) - len(asked),
    )


def _asked_day(asked_at: str) -> date:
    moment = datetime.fromisoformat(asked_at)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def _recurring(
    review: ReviewQueue, asked: Sequence[tuple[str, int | None, str]]
) -> tuple[RecurringTopic, ...]:
    """Groups whose questions went to the policy team in two or more weeks, busiest first.
    A question given a group's reviewed answer is no uncovered question, so it is not counted."""
    weeks_of: dict[int, list[str]] = defaultdict(list)
    for asked_at, group_id, kind in asked:
        if group_id is not None and kind != REVIEWED:
            weeks_of[group_id].append(iso_week(_asked_day(asked_at)))
    recurring = [(gid, weeks) for gid, weeks in weeks_of.items() if len(set(weeks)) >= 2]
    recurring.sort(key=lambda item: (-len(item[1]), -len(set(item[1])), item[0]))
    topics = []
    for group_id, weeks in recurring[:TOP_TOPICS]:
        try:
            group = review.group(group_id)
        except ReviewError:  # purged since: its questions are still counted above
            continue
        topics.append(
            RecurringTopic(
                group_id=group_id,
                status=group.status,
                sample=group.sample,
                reference=group.reference,
                owner=group.owner,
                questions=len(weeks),
                weeks=len(set(weeks)),
                first_week=min(weeks),
                last_week=max(weeks),
            )
        )
    return tuple(topics)


def _feedback(storage: Storage, rated: Sequence[QuestionFact]) -> tuple[SectionFeedback, ...]:
    """Helpful / not helpful per section the rated answer cited (each section once per
    answer); an answer citing none (a reviewed answer) is counted under `NO_SECTION`."""
    helpful: Counter[tuple[str, str]] = Counter()
    not_helpful: Counter[tuple[str, str]] = Counter()
    clause_of: dict[tuple[str, str], int] = {}
    for row in rated:
        if row.feedback not in ("helpful", "not_helpful"):
            continue
        tally = helpful if row.feedback == "helpful" else not_helpful
        keys = section_keys(row) or {("", ""): 0}
        for key, clause_id in keys.items():
            tally[key] += 1
            if clause_id:
                clause_of.setdefault(key, clause_id)
    details = _section_details(storage, clause_of)
    rows = [
        SectionFeedback(
            key[0], key[1], details.get(key, ("", ""))[0], helpful[key], not_helpful[key]
        )
        for key in set(helpful) | set(not_helpful)
    ]
    rows.sort(key=lambda r: (-(r.helpful + r.not_helpful), -r.not_helpful, r.document, r.section))
    return tuple(rows)


#: The tables behind the charts, by the name a CSV download asks for, with their columns.
TABLES: dict[str, tuple[str, ...]] = {
    "weekly": (
        "week",
        "week_starting",
        "answered_from_policy",
        "reviewed_answer",
        "uncertain",
        "not_covered",
        "asked",
        "answered",
        "answered_rate",
    ),
    "sections": ("rank", "document", "section", "title", "owner", "cited_by"),
    "topics": (
        "group_id",
        "status",
        "sample_question",
        "section",
        "owner",
        "questions",
        "weeks",
        "first_week",
        "last_week",
    ),
    "feedback": ("document", "section", "title", "helpful", "not_helpful"),
}


def table(trends: Trends, name: str) -> list[dict[str, Any]]:
    """The rows of one of `TABLES` (KeyError for another name): what a chart shows, as the
    page's table and its CSV both give it."""
    if name == "weekly":
        return [
            {
                "week": w.week,
                "week_starting": w.monday.isoformat(),
                "answered_from_policy": w.from_policy,
                "reviewed_answer": w.reviewed,
                "uncertain": w.uncertain,
                "not_covered": w.not_covered,
                "asked": w.asked,
                "answered": w.answered,
                "answered_rate": "" if w.answered_rate is None else round(w.answered_rate, 4),
            }
            for w in trends.weeks
        ]
    if name == "sections":
        return [
            {
                "rank": rank,
                "document": c.document,
                "section": c.section,
                "title": c.title,
                "owner": c.owner,
                "cited_by": c.count,
            }
            for rank, c in enumerate(trends.cited, start=1)
        ]
    if name == "topics":
        return [
            {
                "group_id": t.group_id,
                "status": t.status,
                "sample_question": t.sample,
                "section": t.reference,
                "owner": t.owner,
                "questions": t.questions,
                "weeks": t.weeks,
                "first_week": t.first_week,
                "last_week": t.last_week,
            }
            for t in trends.recurring
        ]
    if name == "feedback":
        return [
            {
                "document": f.document,
                "section": f.section,
                "title": f.title or (NO_SECTION if not f.section else ""),
                "helpful": f.helpful,
                "not_helpful": f.not_helpful,
            }
            for f in trends.feedback
        ]
    raise KeyError(name)


def table_csv(trends: Trends, name: str) -> str:
    """One of `TABLES` as CSV, through the export's writer (formula-guarded cells)."""
    return write_csv(TABLES[name], table(trends, name))
