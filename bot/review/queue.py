"""The policy team's review list: open questions grouped by topic, routed to the owning team,
resolved once for everyone who asked.

A question lands on the list when the policy does not cover it, when its answer was marked
Not helpful, or when the asker chose "Ask the policy team". It then joins the open group it is
most similar to, or starts one. Similarity is lexical and deterministic: content words, stemmed,
widened by the everyday-to-policy vocabulary and by everyday synonyms, each weighted by how
rare it is in the policy (so "TikTok" or "cafeteria" count, "post" and "social" barely do),
plus whether both sit closest to the same policy section. With the semantic retriever, the
cosine similarity of the question's embedding to the mean of a group's members' is blended in
(kept in memory, never stored). A group keeps the combined term profile of its members, so
placing a question never re-reads the whole log.

An answered group's reply is a reviewed answer: a later question that would have joined the
group gets it instead of a retrieval answer.
"""

from __future__ import annotations

import json
import math
import secrets
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import messages
from bot.models import Retrieval, StoredClause
from bot.notify import Notifier, ReplyAddress
from bot.retrieval.lexical import LexicalRetriever
from bot.review.grouping import (
    GENERIC_WEIGHT,
    SECTION_MIN_CONFIDENCE,
    SECTION_SHARE,
    GroupingRules,
    QuestionVectors,
    TermProfile,
    blended,
    generic_stems,
    word_similarity,
)
from bot.review.groups import (
    MAX_ANSWER_CHARS,
    DeliveryReport,
    Group,
    ReviewError,
    delivery_text,
    owner_matches,
)
from bot.store.database import QuestionRow, ReviewAction, Storage, utcnow
from bot.worker import Worker, blocking

#: What the audit trail (`review_actions`) calls each action on a group.
ANSWERED, EDITED, DISMISSED, WITHDRAWN = "answered", "edited", "dismissed", "withdrawn"


class ReviewQueue:
    """Groups, routes and resolves the questions on the policy team's review list."""

    def __init__(
        self,
        storage: Storage,
        retrieve: Callable[[str], Retrieval],
        lexical: LexicalRetriever,
        vectors: QuestionVectors | None = None,
        rules: GroupingRules | None = None,
    ) -> None:
        self.storage = storage
        self.retrieve = retrieve
        #: Counts the words of the active versions: rarity measured as retrieval measures it.
        self.lexical = lexical
        #: Question embeddings, when the retriever has an embedder; else words alone.
        self.vectors = vectors
        self.rules = rules or GroupingRules()
        #: group id -> (hash of the signature it was summed for, sum of its members' vectors):
        #: a group's signature changes whenever a question joins it, whichever process adds it.
        self._vector_sums: dict[int, tuple[int, Any]] = {}
        #: Who this queue is when it claims a delivery (see `Storage.claim_reply`).
        self.claimant = secrets.token_hex(8)

    def profile(self, text: str) -> TermProfile:
        """A question's term profile under this list's rules."""
        return TermProfile.of(text, self.rules.synonyms)

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
            weight = GENERIC_WEIGHT if key in generic_stems() else 1.0
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
        cosine: float | None = None,
        embedding_share: float = 0.0,
    ) -> float:
        """0..1: the words both use, weighted by rarity (blended with the embeddings' `cosine`
        when there is one), and whether both sit closest to the same policy section
        (`closest` is None when retrieval is too unsure to say)."""
        words = blended(word_similarity(question, profile, idf), cosine, embedding_share)
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
    ) -> tuple[int, TermProfile, str] | None:
        """The id, term profile and stored signature of the group `best_group` finds."""
        if not profile.size:
            return None
        rows = self.storage.group_profiles(status)
        cosines = self._cosines(retrieval.question, rows)
        threshold = self.rules.threshold(cosines is not None, status)
        share = self.rules.embedding_share
        # Every question asked is matched, so this reads only what matching needs, and decodes
        # only the groups that use a stem the question can match, or whose embeddings alone
        # could reach the threshold: any other group scores below it.
        wanted = [f'"{stem}"' for stem in profile.reach]
        by_embedding = (1 - SECTION_SHARE) * share
        candidates = [
            (group_id, profile_json, document, section)
            for group_id, profile_json, document, section in rows
            if any(quoted in profile_json for quoted in wanted)
            or (
                cosines is not None
                and by_embedding * max(cosines[group_id], 0.0) + SECTION_SHARE >= threshold
            )
        ]
        if not candidates:
            return None
        sure = retrieval.ranked and retrieval.confidence >= SECTION_MIN_CONFIDENCE
        closest = retrieval.ranked[0].stored if sure else None
        profiles = {c[0]: TermProfile.from_json(json.loads(c[1])) for c in candidates}
        idf = self._idf(retrieval.version_ids, profile, *profiles.values())
        best: tuple[float, int, TermProfile, str] | None = None
        for group_id, profile_json, document, section in candidates:
            group_profile = profiles[group_id]
            cosine = cosines[group_id] if cosines is not None else None
            score = self._score(
                profile, closest, group_profile, document, section, idf, cosine, share
            )
            if score >= threshold and (best is None or score > best[0]):
                best = (score, group_id, group_profile, profile_json)
        return best[1:] if best else None

    def _cosines(
        self, text: str, rows: Sequence[tuple[int, str, str, str]]
    ) -> dict[int, float] | None:
        """Group id -> cosine similarity of the question's embedding to the mean of its
        members'; None without embeddings (or once they fail). With no group to compare,
        the question is not embedded: nothing would use its vector, and the embedder may be
        busy with a new version's clauses."""
        if self.vectors is None or not text:
            return None
        if not rows:
            return {}
        found = self.vectors.of([text])
        if found is None:
            return None
        (question,) = found
        out: dict[int, float] = {}
        for group_id, profile_json, _, _ in rows:
            total = self._vector_sum(group_id, profile_json)
            if total is None:
                return None
            norm = float((total @ total) ** 0.5)
            out[group_id] = float(question @ total) / norm if norm else 0.0
        return out

    def _vector_sum(self, group_id: int, profile_json: str) -> Any | None:
        """The sum of a group's members' vectors, summed again when a question joined it since
        (in this process or another)."""
        version = hash(profile_json)
        cached = self._vector_sums.get(group_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        assert self.vectors is not None
        texts = [row.text for row in self.storage.group_members(group_id)]
        vectors = self.vectors.of(texts) if texts else None
        if not vectors:
            return None
        total = sum(vectors[1:], vectors[0])
        self._vector_sums[group_id] = (version, total)
        return total

    def _remember_vector(
        self, group_id: int, text: str, signature: str, before: str | None
    ) -> None:
        """Keep the group's vector sum current after `text` joined it (`before`: the
        signature it had, None for a new group), so the next question need not re-embed it."""
        if self.vectors is None or self.vectors.broken:
            return
        found = self.vectors.of([text])
        if found is None:
            return
        cached = self._vector_sums.get(group_id)
        if before is None:
            self._vector_sums[group_id] = (hash(signature), found[0])
        elif cached is not None and cached[0] == hash(before):
            self._vector_sums[group_id] = (hash(signature), cached[1] + found[0])

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

    def members(self, group_id: int) -> list[QuestionRow]:
        return self.storage.group_members(group_id)

    def place(self, question_id: int) -> int:
        """Put a logged question on the list (Not helpful, escalated): into the open group it
        matches best, or a new group. One already in an open group stays there."""
        row = self.storage.question(question_id)
        current = row.group_id
        if current and self.storage.group(current)["status"] == "open":
            return current  # already on the list (escalated twice, say)
        return self.join(question_id, row.text)

    def join(
        self,
        question_id: int,
        text: str,
        retrieval: Retrieval | None = None,
        profile: TermProfile | None = None,
        label: str = "",
    ) -> int:
        """Put a question that is in no open group into the open group it matches best, or a
        new group; `retrieval` and `profile` when the caller has them (a question just asked).
        `label`: how a new group shows it (`text` when empty)."""
        retrieval = retrieval if retrieval is not None else self.retrieve(text)
        profile = profile if profile is not None else self.profile(text)
        closest = retrieval.ranked[0].stored if retrieval.ranked else None
        with self.storage.transaction():
            group = self._best(profile, retrieval, status="open")
            before: str | None = None
            if group is None:
                signature = json.dumps(profile.as_json())
                group_id = self.storage.create_group(
                    {
                        "status": "open",
                        "label": label or text,
                        "signature": signature,
                        "answered_by": "",
                        "closed_at": "",
                    }
                )
            else:
                group_id, group_profile, before = group
                signature = json.dumps(group_profile.merged(profile).as_json())
                self.storage.update_group(group_id, signature=signature)
            self.storage.update_question(
                question_id, group_id=group_id, closest_clause_id=closest.id if closest else None
            )
            self._route(group_id)
        self._remember_vector(group_id, retrieval.question, signature, before)
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
        answer = clean_answer(text)
        before = self.group(group_id)
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
            action = EDITED if before.status == "answered" else ANSWERED
            self.storage.record_review_action(group_id, action, by, answer)
        return self.group(group_id)

    def dismiss(self, group_id: int, by: str = "", detail: str = "") -> Group:
        """Close a group without an answer (or withdraw its reviewed answer); nobody is sent
        anything, so the askers' reply addresses are deleted now. `detail`: what the audit
        trail says besides (a bulk dismissal says so)."""
        before = self.group(group_id)
        with self.storage.transaction():
            self.storage.update_group(
                group_id, status="dismissed", answered_by=by, closed_at=utcnow()
            )
            self.storage.close_group_questions(group_id, "dismissed")
            self.storage.delete_reply_addresses_of_group(group_id)
            action = WITHDRAWN if before.status == "answered" else DISMISSED
            self.storage.record_review_action(group_id, action, by, detail)
        return self.group(group_id)

    def actions(self, group_id: int) -> list[ReviewAction]:
        """Who did what to the group, when, oldest first."""
        return self.storage.review_actions(group_id)

    async def deliver(
        self,
        notifiers: Mapping[str, Notifier],
        group_id: int | None = None,
        *,
        asker: tuple[str, str] | None = None,
        worker: Worker | None = None,
    ) -> DeliveryReport:
        """Send reviewed answers to askers not yet reached (only to `asker`, a platform and
        user id, when given); each one is claimed in the database first, so that of several
        processes delivering at once one sends it; a delivered address is deleted, an
        undeliverable one is kept for the next attempt (until the retention period ends).
        The database calls between the sends go through `worker` (the bot's), so a write
        lock another process holds delays the deliveries, not the event loop."""
        sent = failed = 0
        waiting: Counter[str] = Counter()
        for pending in await blocking(worker, self.storage.pending_deliveries, group_id):
            if asker is not None and (pending.platform, pending.user_id) != asker:
                continue
            notifier = notifiers.get(pending.platform)
            if notifier is None:
                waiting[pending.platform] += 1
                continue
            # Another process (a replica, `questions answer` beside `serve`) may be sending
            # this one now: only the claim's holder sends it.
            if not await blocking(
                worker, self.storage.claim_reply, pending.question_id, self.claimant
            ):
                continue
            address = ReplyAddress(pending.platform, pending.user_id, pending.conversation or "")
            text = delivery_text(pending.text, pending.answer, pending.answered_at)
            try:
                await notifier.send(address, text)
            # Any failure (DeliveryError, a network error) keeps that address for a retry;
            # one asker's failure must not stop the others from being reached.
            except Exception as error:
                await blocking(
                    worker,
                    self.storage.record_delivery_failure,
                    pending.question_id,
                    f"{type(error).__name__}: {error}",
                )
                failed += 1
                continue
            await blocking(worker, self.storage.delete_reply_address, pending.question_id)
            sent += 1
        return DeliveryReport(sent=sent, failed=failed, waiting=dict(waiting))

    # -- privacy ---------------------------------------------------------------------------
    def expire(self, retention_days: int, now: datetime | None = None) -> int:
        """Delete reply addresses and asker names older than the retention period."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        return self.storage.expire_contacts(cutoff.isoformat(timespec="seconds"))


def clean_answer(text: str) -> str:
    """A reviewer's answer as stored and sent: trailing spaces gone; ReviewError when it is
    empty or longer than MAX_ANSWER_CHARS."""
    answer = "\n".join(line.rstrip() for line in (text or "").strip().splitlines())
    if not answer:
        raise ReviewError(messages.EMPTY_ANSWER)
    if len(answer) > MAX_ANSWER_CHARS:
        raise ReviewError(messages.answer_too_long(len(answer), MAX_ANSWER_CHARS))
    return answer


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
