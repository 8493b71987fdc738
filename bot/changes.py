"""What a new version changes against the active one: clauses added, removed, changed
(reworded in place or moved to another section) and unchanged, paired by their words
within a budget, and the summary an admin reads before activating."""

import difflib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bot.models import Clause
from bot.retrieval.vocabulary import words
from bot.store.database import VersionInfo

#: Two clauses in the same section are one clause changed when their words overlap this much
#: (Dice coefficient over words); clauses that moved to another section need more.
SAME_SECTION_SIMILARITY = 0.35
MOVED_SIMILARITY = 0.6
#: Clause pairs the comparison scores at most. Pairing is quadratic: two 10,000-clause versions
#: with nothing in common would be 100 million pairs. Past the budget only clauses in the same
#: section are paired, and past it again none are (they are listed as added and removed).
PAIR_BUDGET = 2_000_000
#: The kinds of run `ClauseChange.word_changes` yields.
SAME, REMOVED, ADDED = "same", "removed", "added"


@dataclass(frozen=True)
class ClauseChange:
    old: Clause
    new: Clause

    def word_changes(self) -> list[tuple[str, str]]:
        """The reworded text as runs of words, each (SAME, REMOVED or ADDED, the words):
        removed words come before the ones that took their place."""
        old, new = self.old.text.split(), self.new.text.split()
        out: list[tuple[str, str]] = []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new).get_opcodes():
            if op == "equal":
                out.append((SAME, " ".join(new[j1:j2])))
                continue
            if i2 > i1:
                out.append((REMOVED, " ".join(old[i1:i2])))
            if j2 > j1:
                out.append((ADDED, " ".join(new[j1:j2])))
        return out

    def word_diff(self) -> str:
        """The new text with removed words in [-…-] and added ones in {+…+}."""
        marks = {SAME: "{}", REMOVED: "[-{}-]", ADDED: "{{+{}+}}"}
        return " ".join(marks[kind].format(words) for kind, words in self.word_changes())


def _clause_json(clause: Clause) -> dict[str, Any]:
    return {"section": clause.section, "title": clause.section_title, "text": clause.text}


@dataclass(frozen=True)
class ChangeSummary:
    """What a version changes against another (normally the document's active version)."""

    document: str
    target: VersionInfo
    base: VersionInfo | None  # None when the document has no active version yet
    added: tuple[Clause, ...] = ()
    removed: tuple[Clause, ...] = ()
    changed: tuple[ClauseChange, ...] = ()
    unchanged: int = 0

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def headline(self) -> str:
        if self.base:
            against = f"against {self.base.display} ({self.base.status})"
        elif self.target.number > 1:
            against = "(no version of this document is active)"
        else:
            against = "(the first version of this document)"
        counts = (
            f"{len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.changed)} changed, {self.unchanged} unchanged"
        )
        return f"{self.target.display} ({self.target.status}) {against}: {counts}."

    def as_text(self, limit: int | None = None) -> str:
        """The summary an admin reads before activating; `limit` caps the listed changes
        (chat messages are short), saying how many were left out."""
        lines = [self.headline()]
        entries: list[list[str]] = []
        for clause in self.added:
            entries.append([f"+ added {clause.reference}", f"    “{clause.text}”"])
        for clause in self.removed:
            entries.append([f"- removed {clause.reference}", f"    “{clause.text}”"])
        for change in self.changed:
            where = change.new.reference
            if change.old.reference != change.new.reference:
                where = f"{change.old.reference} -> {change.new.reference}"
            entry = [f"~ changed {where}"]
            if change.old.text == change.new.text:
                entry.append("    (text unchanged; it moved)")
            else:
                entry += [f"    old: “{change.old.text}”", f"    new: “{change.new.text}”"]
            entries.append(entry)
        shown = entries if limit is None else entries[:limit]
        for entry in shown:
            lines.extend(entry)
        if len(shown) < len(entries):
            lines.append(
                f"… and {len(entries) - len(shown)} more "
                f"(policybot policy diff {self.target.reference} lists them all)."
            )
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "version": self.target.id,
            "against": self.base.id if self.base else None,
            "added": [_clause_json(c) for c in self.added],
            "removed": [_clause_json(c) for c in self.removed],
            "changed": [
                {"old": _clause_json(c.old), "new": _clause_json(c.new)} for c in self.changed
            ],
            "unchanged": self.unchanged,
        }


def _bag(text: str) -> Counter[str]:
    return Counter(words(text))


def _similarity(a: Counter[str], b: Counter[str]) -> float:
    total = sum(a.values()) + sum(b.values())
    return 2 * sum((a & b).values()) / total if total else 1.0


def _pairs_to_score(
    old: Sequence[Clause], new: Sequence[Clause], old_left: list[int], new_left: list[int]
) -> Iterator[tuple[int, int]]:
    """(old, new) index pairs worth scoring, within PAIR_BUDGET: every pair when it fits, else
    pairs in the same section, else none."""
    if len(old_left) * len(new_left) <= PAIR_BUDGET:
        yield from ((i, j) for j in new_left for i in old_left)
        return
    old_by_section: dict[str, list[int]] = defaultdict(list)
    for i in old_left:
        old_by_section[old[i].section].append(i)
    new_by_section: dict[str, list[int]] = defaultdict(list)
    for j in new_left:
        new_by_section[new[j].section].append(j)
    same_section = sum(
        len(old_by_section[section]) * len(js) for section, js in new_by_section.items()
    )
    if same_section > PAIR_BUDGET:
        return
    for section, js in new_by_section.items():
        yield from ((i, j) for j in js for i in old_by_section.get(section, []))


def compare_clauses(
    old: Sequence[Clause], new: Sequence[Clause]
) -> tuple[list[Clause], list[Clause], list[ClauseChange], int]:
    """(added, removed, changed, unchanged count): identical text pairs first, then the most
    similar remaining clauses, preferring the same section."""
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, clause in enumerate(old):
        by_text[" ".join(clause.text.split())].append(i)
    changed: list[tuple[int, ClauseChange]] = []
    unchanged = 0
    new_left: list[int] = []
    for j, clause in enumerate(new):
        same_text = by_text.get(" ".join(clause.text.split()))
        if not same_text:
            new_left.append(j)
            continue
        i = next((i for i in same_text if old[i].section == clause.section), same_text[0])
        same_text.remove(i)
        if old[i].reference == clause.reference:
            unchanged += 1
        else:
            changed.append((j, ClauseChange(old[i], clause)))  # moved or renumbered
    old_left = sorted(i for group in by_text.values() for i in group)

    bags_old = {i: _bag(old[i].text) for i in old_left}
    bags_new = {j: _bag(new[j].text) for j in new_left}
    sizes_old = {i: sum(bag.values()) for i, bag in bags_old.items()}
    sizes_new = {j: sum(bag.values()) for j, bag in bags_new.items()}
    candidates: list[tuple[float, int, int]] = []
    for i, j in _pairs_to_score(old, new, old_left, new_left):
        same_section = old[i].section == new[j].section
        threshold = SAME_SECTION_SIMILARITY if same_section else MOVED_SIMILARITY
        size_old, size_new = sizes_old[i], sizes_new[j]
        if 2 * min(size_old, size_new) < threshold * (size_old + size_new):
            continue  # lengths alone rule a match out
        score = _similarity(bags_old[i], bags_new[j])
        if score >= threshold:
            candidates.append((score + (0.25 if same_section else 0.0), i, j))
    paired_old: set[int] = set()
    paired_new: set[int] = set()
    for _, i, j in sorted(candidates, key=lambda c: (-c[0], c[2], c[1])):
        if i in paired_old or j in paired_new:
            continue
        paired_old.add(i)
        paired_new.add(j)
        changed.append((j, ClauseChange(old[i], new[j])))
    added = [new[j] for j in new_left if j not in paired_new]
    removed = [old[i] for i in old_left if i not in paired_old]
    return added, removed, [c for _, c in sorted(changed, key=lambda p: p[0])], unchanged
