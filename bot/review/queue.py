"""The policy team's review list: open questions grouped by topic, routed to the owning team,
resolved once for everyone who asked.

A question lands on the list when the policy does not cover it, when its answer was marked
Not helpful, or when the asker chose "Ask the policy team". It then joins the open group it is
most similar to, or starts one. Similarity is lexical and deterministic: content words, stemmed,
widened by the everyday-to-policy vocabulary and by everyday synonyms, each weighted by how
rare it is in the policy (so "TikTok" or "cafeteria" count, "post" and "social" barely do),
plus whether both sit closest to the same policy section. A group keeps the combined term
profile of its members, so placing a question never re-reads the whole log.

An answered group's reply is a reviewed answer: a later question that would have joined the
group gets it instead of a retrieval answer.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from bot import access, messages
from bot.models import Retrieval, StoredClause
from bot.notify import Notifier, ReplyAddress
from bot.retrieval.lexical import LexicalRetriever, stem, term_groups
from bot.retrieval.vocabulary import GENERIC_QUESTION_WORDS, TOPIC_SYNONYMS
from bot.store.database import Storage, utcnow

#: A question joins a group at this similarity or above (0..1); tuned on paraphrase sets in
#: tests/test_review.py, including near misses that share a word but not a topic.
JOIN_THRESHOLD = 0.45
#: How much sitting closest to the same policy section counts, against the words (0..1).
SECTION_SHARE = 0.15
#: Below this retrieval confidence the closest section is a guess and is not counted.
SECTION_MIN_CONFIDENCE = 0.3
#: How much a generic word ("days", "office") counts against a word of the same rarity.
GENERIC_WEIGHT = 0.25
#: How much an everyday synonym ("reimburse" for "expense") counts against the word itself.
SYNONYM_WEIGHT = 0.9
#: The longest reviewed answer accepted, in characters.
MAX_ANSWER_CHARS = 4000


class ReviewError(ValueError):
    """A review action that cannot be done; the message is meant for the reviewer."""


@lru_cache(maxsize=1)
def _generic() -> frozenset[str]:
    return frozenset(stem(word) for word in GENERIC_QUESTION_WORDS)


@lru_cache(maxsize=1)
def _synonyms() -> dict[str, frozenset[str]]:
    """Stem -> the stems of its everyday synonyms."""
    out: dict[str, set[str]] = {}
    for synonyms in TOPIC_SYNONYMS:
        stems = {stem(word) for word in synonyms}
        for s in stems:
            out.setdefault(s, set()).update(stems - {s})
    return {s: frozenset(others) for s, others in out.items()}


# -- term profiles ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TermProfile:
    """The words of one question, or of every question in a group, with what each can match
    (stored as a group's `signature` column; one concept, this one name in the code).

    `terms` maps a content word's stem to (how many members use it, the stems that count as
    matching it with their weights); `reach` maps a stem to the sum over members of the best
    weight with which that member matches it.
    """

    size: int
    terms: dict[str, tuple[int, dict[str, float]]]
    reach: dict[str, float]

    @classmethod
    def of(cls, text: str) -> TermProfile:
        terms: dict[str, tuple[int, dict[str, float]]] = {}
        for group in term_groups(text):
            key = stem(group.word)
            members = dict(group.members)
            for synonym in sorted(_synonyms().get(key, ())):
                members[synonym] = max(members.get(synonym, 0.0), SYNONYM_WEIGHT)
            if key in terms:  # two words with one stem ("post", "posting")
                _, known = terms[key]
                members = {m: max(w, known.get(m, 0.0)) for m, w in {**known, **members}.items()}
            terms[key] = (1, members)
        reach: dict[str, float] = {}
        for _, members in terms.values():
            for m, w in members.items():
                reach[m] = max(reach.get(m, 0.0), w)
        return cls(1 if terms else 0, terms, reach)

    def merged(self, other: TermProfile) -> TermProfile:
        terms = dict(self.terms)
        for key, (count, members) in other.terms.items():
            if key in terms:
                known_count, known = terms[key]
                union = {m: max(w, known.get(m, 0.0)) for m, w in {**known, **members}.items()}
                terms[key] = (known_count + count, union)
            else:
                terms[key] = (count, dict(members))
        reach = dict(self.reach)
        for m, w in other.reach.items():
            reach[m] = reach.get(m, 0.0) + w
        return TermProfile(self.size + other.size, terms, reach)

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "terms": {
                k: [c, {m: round(w, 3) for m, w in ms.items()}]
                for k, (c, ms) in sorted(self.terms.items())
            },
            "reach": {m: round(w, 3) for m, w in sorted(self.reach.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TermProfile:
        terms = {
            k: (int(v[0]), {m: float(w) for m, w in v[1].items()})
            for k, v in data.get("terms", {}).items()
        }
        reach = {m: float(w) for m, w in data.get("reach", {}).items()}
        return cls(int(data.get("size", 0)), terms, reach)


#: The old name, for the tests and adapters that import it (removed next round).
Profile = TermProfile


def _covered(a: TermProfile, b: TermProfile, idf: Mapping[str, float]) -> float:
    """How much of A's words (weighted by rarity and by how many of A use them) B matches."""
    if not a.size or not b.size:
        return 0.0
    gained = total = 0.0
    for key, (count, members) in a.terms.items():
        weight = idf.get(key, 1.0) * count / a.size
        total += weight
        best = max(
            (w * min(b.reach.get(m, 0.0) / b.size, 1.0) for m, w in members.items()), default=0.0
        )
        gained += weight * best
    return gained / total if total else 0.0


def word_similarity(a: TermProfile, b: TermProfile, idf: Mapping[str, float]) -> float:
    """Symmetric: the mean of how much of A B covers and how much of B A covers."""
    return (_covered(a, b, idf) + _covered(b, a, idf)) / 2


# -- groups ----------------------------------------------------------------------------------
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
    #: Why its questions are on the list: not_covered, not_helpful, ask_policy_team.
    reasons: tuple[str, ...]
    profile: TermProfile = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """The old name of `sample`, for the adapters that still use it (removed next round)."""
        return self.sample

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


class ReviewQueue:
    """Groups, routes and resolves the questions on the policy team's review list."""

    def __init__(
        self,
        storage: Storage,
        retrieve: Callable[[str], Retrieval],
        lexical: LexicalRetriever,
    ) -> None:
        self.storage = storage
        self.retrieve = retrieve
        #: Counts the words of the active versions: rarity measured as retrieval measures it.
        self.lexical = lexical

    # -- similarity ------------------------------------------------------------------------
    def _idf(self, versions: Sequence[int], *profiles: TermProfile) -> dict[str, float]:
        """Rarity of each word in the policy versions a question was answered from, as
        retrieval measures it: a word the policy never uses weighs most, unless the vocabulary
        maps it to policy words ("email" -> e-mail), when it is as rare as the rarest of those."""
        members: dict[str, set[str]] = {}
        for p in profiles:
            for key, (_, matching) in p.terms.items():
                members.setdefault(key, set()).update(matching)
        counts = self.lexical.document_frequency(
            versions, {m for ms in members.values() for m in ms}
        )
        total = self.lexical.clause_total(versions)
        out = {}
        for key, stems in members.items():
            known = [counts[m] for m in stems if counts.get(m)]
            df = counts.get(key, 0) or (min(known) if known else 0)
            weight = GENERIC_WEIGHT if key in _generic() else 1.0
            out[key] = weight * math.log(1 + (total - df + 0.5) / (df + 0.5))
        return out

    @staticmethod
    def _score(
        question: TermProfile,
        closest: StoredClause | None,
        profile: TermProfile,
        document: str,
        section: str,
        idf: Mapping[str, float],
    ) -> float:
        """0..1: the words both use, weighted by rarity, and whether both sit closest to the
        same policy section (`closest` is None when retrieval is too unsure to say)."""
        words = word_similarity(question, profile, idf)
        same_section = (
            closest is not None
            and bool(document)
            and (closest.document, closest.clause.section) == (document, section)
        )
        return (1 - SECTION_SHARE) * words + SECTION_SHARE * float(same_section)

    def best_group(self, profile: TermProfile, retrieval: Retrieval, status: str) -> Group | None:
        """The group of `status` this question would join, if any (ties: the oldest)."""
        best = self._best(profile, retrieval, status)
        return self.group(best[0]) if best else None

    def _best(
        self, profile: TermProfile, retrieval: Retrieval, status: str
    ) -> tuple[int, TermProfile] | None:
        """The id and term profile of the group `best_group` finds."""
        if not profile.size:
            return None
        # Every question asked is matched, so this reads only what matching needs, and decodes
        # only the groups that use a stem the question can match: any other group scores at
        # most SECTION_SHARE, below JOIN_THRESHOLD.
        wanted = [f'"{stem}"' for stem in profile.reach]
        candidates = [
            (group_id, TermProfile.from_json(json.loads(profile_json)), document, section)
            for group_id, profile_json, document, section in self.storage.group_profiles(status)
            if any(quoted in profile_json for quoted in wanted)
        ]
        if not candidates:
            return None
        sure = retrieval.ranked and retrieval.confidence >= SECTION_MIN_CONFIDENCE
        closest = retrieval.ranked[0].stored if sure else None
        idf = self._idf(retrieval.version_ids, profile, *(c[1] for c in candidates))
        best: tuple[float, int, TermProfile] | None = None
        for group_id, group_profile, document, section in candidates:
            score = self._score(profile, closest, group_profile, document, section, idf)
            if score >= JOIN_THRESHOLD and (best is None or score > best[0]):
                best = (score, group_id, group_profile)
        return best[1:] if best else None

    # -- the list --------------------------------------------------------------------------
    def groups(self, status: str | None = "open", owner: str | None = None) -> list[Group]:
        groups = [Group.from_row(row) for row in self.storage.groups(status)]
        if owner is not None:
            groups = [g for g in groups if owner_matches(owner, g.owner)]
        return groups

    def queue(self, status: str | None = "open", owner: str | None = None) -> list[Group]:
        """Groups busiest first, then most recently asked."""
        groups = self.groups(status, owner)
        groups.sort(key=lambda g: g.last_seen, reverse=True)
        groups.sort(key=lambda g: g.count, reverse=True)
        return groups

    def group(self, group_id: int) -> Group:
        try:
            return Group.from_row(self.storage.group(group_id))
        except KeyError:
            raise ReviewError(messages.no_such_group(group_id)) from None

    def members(self, group_id: int) -> list[dict[str, Any]]:
        return self.storage.group_members(group_id)

    def place(self, question_id: int) -> int:
        """Put a logged question on the list (Not helpful, escalated): into the open group it
        matches best, or a new group. One already in an open group stays there."""
        row = self.storage.question(question_id)
        current = row.get("group_id")
        if current and self.storage.group(current)["status"] == "open":
            return int(current)  # already on the list (escalated twice, say)
        return self.join(question_id, row["text"])

    def join(
        self,
        question_id: int,
        text: str,
        retrieval: Retrieval | None = None,
        profile: TermProfile | None = None,
    ) -> int:
        """Put a question that is in no open group into the open group it matches best, or a
        new group; `retrieval` and `profile` when the caller has them (a question just asked)."""
        retrieval = retrieval if retrieval is not None else self.retrieve(text)
        profile = profile if profile is not None else TermProfile.of(text)
        closest = retrieval.ranked[0].stored if retrieval.ranked else None
        with self.storage.transaction():
            group = self._best(profile, retrieval, status="open")
            if group is None:
                group_id = self.storage.create_group(
                    {
                        "status": "open",
                        "label": text,
                        "signature": json.dumps(profile.as_json()),
                        "answered_by": "",
                        "closed_at": "",
                    }
                )
            else:
                group_id, group_profile = group
                merged = group_profile.merged(profile)
                self.storage.update_group(group_id, signature=json.dumps(merged.as_json()))
            self.storage.update_question(
                question_id, group_id=group_id, closest_clause_id=closest.id if closest else None
            )
            self._route(group_id)
        return group_id

    def _route(self, group_id: int) -> None:
        """The group's section is the one most of its questions are closest to (ties: the
        earliest asked); its owner is that section's team."""
        clause_ids = self.storage.member_closest_clauses(group_id)
        clauses = self.storage.clauses_by_id(clause_ids)
        keys = [
            (clauses[cid].document, clauses[cid].clause.section, cid)
            for cid in clause_ids
            if cid in clauses
        ]
        if not keys:
            return
        tally: Counter[tuple[str, str]] = Counter()
        first: dict[tuple[str, str], int] = {}
        for index, (document, section, _) in enumerate(keys):
            tally[(document, section)] += 1
            first.setdefault((document, section), index)
        winner = min(tally, key=lambda k: (-tally[k], first[k]))
        clause = clauses[keys[first[winner]][2]]
        self.storage.update_group(
            group_id,
            clause_id=clause.id,
            document=clause.document,
            section=clause.clause.section,
            section_title=clause.clause.section_title,
            owner=clause.clause.owner,
        )

    # -- resolving -------------------------------------------------------------------------
    def answer(self, group_id: int, text: str, by: str = "") -> Group:
        """Store a reviewed answer for the group; its open questions become resolved."""
        answer = "\n".join(line.rstrip() for line in (text or "").strip().splitlines())
        if not answer:
            raise ReviewError(messages.EMPTY_ANSWER)
        if len(answer) > MAX_ANSWER_CHARS:
            raise ReviewError(messages.answer_too_long(len(answer), MAX_ANSWER_CHARS))
        self.group(group_id)
        now = utcnow()
        with self.storage.transaction():
            self.storage.update_group(
                group_id,
                status="answered",
                answer=answer,
                answered_at=now,
                answered_by=by,
                closed_at=now,
            )
            self.storage.close_group_questions(group_id, "resolved")
        return self.group(group_id)

    def dismiss(self, group_id: int, by: str = "") -> Group:
        """Close a group without an answer (or withdraw its reviewed answer); nobody is sent
        anything, so the askers' reply addresses are deleted now."""
        self.group(group_id)
        with self.storage.transaction():
            self.storage.update_group(
                group_id, status="dismissed", answered_by=by, closed_at=utcnow()
            )
            self.storage.close_group_questions(group_id, "dismissed")
            self.storage.delete_reply_addresses_of_group(group_id)
        return self.group(group_id)

    async def deliver(
        self,
        notifiers: Mapping[str, Notifier],
        group_id: int | None = None,
        *,
        asker: tuple[str, str] | None = None,
    ) -> DeliveryReport:
        """Send reviewed answers to askers not yet reached (only to `asker`, a platform and
        user id, when given); a delivered address is deleted, an undeliverable one is kept for
        the next attempt (until the retention period ends)."""
        sent = failed = 0
        waiting: Counter[str] = Counter()
        for pending in self.storage.pending_deliveries(group_id):
            if asker is not None and (pending["platform"], pending["user_id"]) != asker:
                continue
            notifier = notifiers.get(pending["platform"])
            if notifier is None:
                waiting[pending["platform"]] += 1
                continue
            address = ReplyAddress(
                pending["platform"], pending["user_id"], pending["conversation"] or ""
            )
            text = delivery_text(pending["text"], pending["answer"], pending["answered_at"])
            try:
                await notifier.send(address, text)
            # Any failure (DeliveryError, a network error) keeps that address for a retry;
            # one asker's failure must not stop the others from being reached.
            except Exception as error:
                self.storage.record_delivery_failure(
                    pending["question_id"], f"{type(error).__name__}: {error}"
                )
                failed += 1
                continue
            self.storage.delete_reply_address(pending["question_id"])
            sent += 1
        return DeliveryReport(sent=sent, failed=failed, waiting=dict(waiting))

    # -- privacy ---------------------------------------------------------------------------
    def expire(self, retention_days: int, now: datetime | None = None) -> int:
        """Delete reply addresses and asker names older than the retention period."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        return self.storage.expire_contacts(cutoff.isoformat(timespec="seconds"))


def parse_age(text: str) -> timedelta:
    """ "180d", "26w", "12h" or a bare number of days, for `--older-than`."""
    raw = (text or "").strip().lower()
    units = {"d": 1.0, "w": 7.0, "h": 1 / 24}
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "d")
    try:
        value = float(number)
    except ValueError:
        raise ReviewError(messages.unreadable_age(text)) from None
    if value <= 0 or math.isinf(value) or math.isnan(value):
        raise ReviewError(messages.age_not_positive(text))
    return timedelta(days=value * units[unit])


#: Now in bot.access; kept here for the adapters that import it from here (next round: none).
may_review = access.may_review
