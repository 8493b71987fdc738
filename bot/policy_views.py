"""What a screen of the policy pages shows (the web console): each document with its
versions and history, and what the re-check after each activation found, section by section
("7 open questions now answered by §4.2"). Reads only: uploading, activating, rolling back and
retiring go through `PolicyBot`'s use cases like every platform."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from bot import messages
from bot.policies import PolicyLibrary
from bot.store.database import VersionInfo


@dataclass(frozen=True)
class SectionAnswered:
    """Open questions a re-check found one section now answers."""

    reference: str  # "4.2 Personal accounts", or "" when the clause is gone
    question_ids: tuple[int, ...]

    def as_text(self) -> str:
        return messages.now_answered_by_section(len(self.question_ids), self.reference)


@dataclass(frozen=True)
class ActivationEvent:
    """One entry of a document's history: a version activated, rolled back to or retired,
    with what the re-check after it found (for an activation or rollback)."""

    version: VersionInfo
    kind: str  # activate | rollback | retire
    by: str
    at: str
    now_answered: tuple[SectionAnswered, ...] = ()

    @property
    def answered_count(self) -> int:
        return sum(len(s.question_ids) for s in self.now_answered)


@dataclass(frozen=True)
class DocumentView:
    name: str
    title: str
    active: VersionInfo | None
    #: Newest first.
    versions: tuple[VersionInfo, ...]
    #: Oldest first, as `policy history` lists it.
    history: tuple[ActivationEvent, ...]


def documents(library: PolicyLibrary) -> list[DocumentView]:
    """Every document, in the order they were first stored."""
    storage = library.storage
    every = storage.versions()
    out = []
    for name in dict.fromkeys(v.document for v in every):
        versions = [v for v in every if v.document == name]
        active = next((v for v in versions if v.status == "active"), None)
        out.append(
            DocumentView(
                name=name,
                title=(active or versions[-1]).title,
                active=active,
                versions=tuple(sorted(versions, key=lambda v: v.id, reverse=True)),
                history=tuple(history(library, name)),
            )
        )
    return out


def history(library: PolicyLibrary, document: str) -> list[ActivationEvent]:
    """A document's activations with the re-check results of each: the open questions whose
    re-check, between this activation and the document's next one, found the activated
    version's clauses answer them (as they stand now: a question answered since is no
    longer open, and a later re-check that no longer finds an answer unflags it)."""
    storage = library.storage
    events = storage.activations(document)
    versions = {v.id: v for v in storage.versions(document)}
    out = []
    for index, event in enumerate(events):
        version = versions.get(int(event["version_id"]))
        if version is None:
            continue
        at = str(event["activated_at"] or "")
        found: tuple[SectionAnswered, ...] = ()
        if event["kind"] != "retire" and at:
            until = str(events[index + 1]["activated_at"] or "") if index + 1 < len(events) else ""
            found = _answered_by_section(library, version.id, at, until)
        out.append(
            ActivationEvent(
                version, str(event["kind"]), str(event["activated_by"] or ""), at, found
            )
        )
    return out


def _answered_by_section(
    library: PolicyLibrary, version_id: int, since: str, until: str
) -> tuple[SectionAnswered, ...]:
    storage = library.storage
    rows = [
        row
        for row in storage.now_answered_by(version_id, since)
        if not until or (row.now_answered_at or "") < until
    ]
    best = {
        row.id: int(row.now_answered_citations[0]["clause_id"])
        for row in rows
        if row.now_answered_citations
    }
    clauses = storage.clauses_by_id(set(best.values()))
    by_section: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        clause = clauses.get(best.get(row.id, -1))
        by_section[clause.clause.reference if clause else ""].append(row.id)
    ordered = sorted(by_section.items(), key=lambda item: (-len(item[1]), item[0]))
    return tuple(SectionAnswered(reference, tuple(ids)) for reference, ids in ordered)
