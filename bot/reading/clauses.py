"""Structural blocks into citable clauses: a sentence to a short paragraph, with its section."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.models import Block, Clause

#: Clause length bounds in characters. Short units are merged with a neighbour; long ones are
#: cut at sentence boundaries, so a quote answers a question and fits in a chat message.
MIN_CHARS = 80
TARGET_CHARS = 320
MAX_CHARS = 600

_NUMBERED = re.compile(
    r"^(?:section\s+|article\s+|§\s*)?((?:\d+|[A-Z]|[IVXLC]+)(?:\.\d+)*)(?:\.|\))?\s+(\S.*)$",
    re.I,
)
_DIGITS = re.compile(r"^\d+(?:\.\d+)*$")
_OWNER = re.compile(
    r"^(?:section\s+)?(?:owners?|owned by|owning team|responsible team|maintained by)"
    r"\s*[:\-]\s*(.+)$",
    re.I,
)
_CLAUSE_NUMBER = re.compile(r"^(\d+(?:\.\d+)+)\.?\s+(?=\S)")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[\"“(]?[A-Z0-9])")
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|Mr|Mrs|Ms|Dr|Inc|Ltd|Co|No|St|U\.S|approx|incl)\.|\b[A-Z]\.)$"
)


@dataclass
class _Heading:
    level: int
    number: str
    title: str
    text: str
    owner: str = ""


@dataclass
class _Pending:
    """Text waiting to become one or more clauses, under one heading path."""

    parts: list[str] = field(default_factory=list)
    from_list: bool = False
    from_table: bool = False
    line_start: int = 0
    line_end: int = 0


def split_heading(text: str) -> tuple[str, str]:
    """ "4.2 Customer data" -> ("4.2", "Customer data"); an unnumbered heading has number ""."""
    match = _NUMBERED.match(text.strip())
    if match:
        number, title = match.group(1), match.group(2).strip()
        # A lone letter or roman numeral counts only with a dot ("A. Scope"), not "I think".
        if _DIGITS.match(number) or text.strip()[len(number) : len(number) + 1] in {".", ")"}:
            return number.rstrip("."), title
    return "", text.strip()


def split_sentences(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start : match.start()].rstrip()
        if _ABBREVIATION.search(candidate):
            continue
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        pieces.append(tail)
    return pieces


def _cut_long(sentence: str, limit: int = MAX_CHARS) -> list[str]:
    """A run-on sentence over the limit is cut at clause punctuation, then at word boundaries."""
    if len(sentence) <= limit:
        return [sentence]
    out: list[str] = []
    current = ""
    for piece in re.split(r"(?<=[;,:])\s+", sentence):
        while len(piece) > limit:
            cut = piece.rfind(" ", 0, TARGET_CHARS) if " " in piece[:TARGET_CHARS] else TARGET_CHARS
            cut = cut if cut > 0 else TARGET_CHARS
            if current:
                out.append(current)
                current = ""
            out.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if current and len(current) + 1 + len(piece) > TARGET_CHARS:
            out.append(current)
            current = piece
        else:
            current = f"{current} {piece}".strip()
    if current:
        out.append(current)
    return out


def pack(units: Sequence[str], target: int = TARGET_CHARS, limit: int = MAX_CHARS) -> list[str]:
    """Group consecutive sentences or short items into clauses of about `target` characters."""
    pieces = [p for unit in units for p in _cut_long(unit.strip(), limit) if p]
    groups: list[str] = []
    current = ""
    for piece in pieces:
        if not current:
            current = piece
        elif len(current) < MIN_CHARS or len(current) + 1 + len(piece) <= target:
            if len(current) + 1 + len(piece) > limit:
                groups.append(current)
                current = piece
            else:
                current = f"{current} {piece}"
        else:
            groups.append(current)
            current = piece
    if current:
        if groups and len(current) < MIN_CHARS and len(groups[-1]) + 1 + len(current) <= limit:
            groups[-1] = f"{groups[-1]} {current}"
        else:
            groups.append(current)
    return groups


class ClauseBuilder:
    """Walks blocks in order, tracking the heading path and owner, and emits clauses."""

    def __init__(self) -> None:
        self.headings: list[_Heading] = []
        self.clauses: list[Clause] = []
        self.title = ""
        self._pending = _Pending()
        self._lead_in = ""
        self._lead_in_lines = (0, 0)
        #: Ordinals of clauses made of table rows: they merge only with each other.
        self._table_clauses: set[int] = set()

    # -- headings -----------------------------------------------------------------------------
    def heading(self, block: Block) -> None:
        self.flush()
        number, title = split_heading(block.text)
        if not self.title and block.level == 1 and not number:
            self.title = title  # the document's own title is not a section
            return
        while self.headings and self.headings[-1].level >= block.level:
            self.headings.pop()
        self.headings.append(_Heading(block.level, number, title, block.text))

    def owner(self, name: str) -> None:
        if self.headings:
            self.headings[-1].owner = name

    # -- text ---------------------------------------------------------------------------------
    def paragraph(self, block: Block) -> None:
        owner = _OWNER.match(block.text)
        if owner and len(block.text) < 120:
            self.owner(owner.group(1).strip().rstrip("."))
            return
        self._flush_lead_in()
        if block.text.endswith(":") and len(block.text) <= 240:
            # "Never share the following:" introduces a list; it is quoted with each item.
            self.flush()
            self._lead_in = block.text
            self._lead_in_lines = (block.line, block.end_line)
            return
        numbered = _CLAUSE_NUMBER.match(block.text)
        if numbered:
            # A numbered sub-clause ("4.2.1 Employees must ...") is a unit of its own.
            self.flush()
            self._add_text(block)
            self.flush(section_override=numbered.group(1))
            return
        if self._pending.from_list:
            self.flush()
        self._add_text(block)
        # Paragraphs stand alone unless too short to be worth quoting on their own.
        if sum(len(p) for p in self._pending.parts) >= MIN_CHARS:
            self.flush()

    def item(self, block: Block) -> None:
        if self._lead_in and not self._pending.parts:
            self._pending.line_start = self._lead_in_lines[0]
        if self._pending.parts and (not self._pending.from_list or self._pending.from_table):
            self.flush()
        self._pending.from_list = True
        self._add_text(block)

    def row(self, block: Block) -> None:
        """Table rows group with each other, never with a list or its lead-in."""
        if not self._pending.from_table:
            self.flush()
            self._lead_in = ""
        self._pending.from_list = self._pending.from_table = True
        self._add_text(block)

    def _add_text(self, block: Block) -> None:
        pending = self._pending
        if not pending.parts and not pending.line_start:
            pending.line_start = block.line
        pending.parts.append(block.text)
        pending.line_end = max(block.end_line, block.line)

    def _flush_lead_in(self) -> None:
        if self._lead_in and not self._pending.parts:
            lead_in = self._lead_in
            self._lead_in = ""
            self._add_text(Block("paragraph", lead_in, 0, *self._lead_in_lines))
        elif self._lead_in:
            self.flush()

    # -- output -------------------------------------------------------------------------------
    def flush(self, section_override: str = "") -> None:
        pending = self._pending
        self._pending = _Pending()
        lead_in, self._lead_in = self._lead_in, ""
        if not pending.parts:
            if lead_in:
                pending.parts = [lead_in]
                pending.line_start, pending.line_end = self._lead_in_lines
            else:
                return
        prefix = f"{lead_in} " if lead_in else ""
        # The lead-in is quoted with each piece, so the pieces leave room for it.
        limit = MAX_CHARS - len(prefix)
        units: list[str] = []
        for part in pending.parts:
            units.extend(split_sentences(part) if len(part) > limit else [part])
        # List items are rules of their own: merged only when too short to quote alone.
        target = MIN_CHARS if pending.from_list else TARGET_CHARS - len(prefix)
        for text in pack(units, target=max(min(target, limit), MIN_CHARS // 2), limit=limit):
            self._emit(
                prefix + text if prefix and not text.startswith(lead_in) else text,
                pending.line_start,
                pending.line_end,
                section_override,
            )
            if pending.from_table:
                self._table_clauses.add(len(self.clauses))

    def _emit(self, text: str, line_start: int, line_end: int, section_override: str) -> None:
        number = section_override or next(
            (h.number for h in reversed(self.headings) if h.number), ""
        )
        title = self.headings[-1].title if self.headings else (self.title or "")
        owner = next((h.owner for h in reversed(self.headings) if h.owner), "")
        self.clauses.append(
            Clause(
                text=text,
                section=number,
                section_title=title,
                heading_path=tuple(h.text for h in self.headings),
                owner=owner,
                ordinal=len(self.clauses) + 1,
                line_start=line_start,
                line_end=line_end or line_start,
            )
        )

    def finish(self) -> list[Clause]:
        self.flush()
        return self._merge_orphans(self.clauses, self._table_clauses)

    @staticmethod
    def _merge_orphans(
        clauses: list[Clause], table_clauses: set[int] | None = None
    ) -> list[Clause]:
        """A clause under the minimum joins its neighbour in the same section when it fits."""
        table_clauses = table_clauses or set()
        merged: list[Clause] = []
        for clause in clauses:
            previous = merged[-1] if merged else None
            if (
                previous is not None
                and (previous.ordinal in table_clauses) == (clause.ordinal in table_clauses)
                and (len(clause.text) < MIN_CHARS or len(previous.text) < MIN_CHARS)
                and previous.heading_path == clause.heading_path
                and previous.section == clause.section
                and len(previous.text) + 1 + len(clause.text) <= MAX_CHARS
            ):
                merged[-1] = Clause(
                    text=f"{previous.text} {clause.text}",
                    section=previous.section,
                    section_title=previous.section_title,
                    heading_path=previous.heading_path,
                    owner=previous.owner,
                    ordinal=previous.ordinal,
                    line_start=previous.line_start,
                    line_end=max(previous.line_end, clause.line_end),
                )
            else:
                merged.append(clause)
        return [
            Clause(
                c.text,
                c.section,
                c.section_title,
                c.heading_path,
                c.owner,
                i + 1,
                c.line_start,
                c.line_end,
            )
            for i, c in enumerate(merged)
        ]


def build_clauses(blocks: Iterable[Block]) -> tuple[str, list[Clause]]:
    """Return the document title found in the blocks (or "") and its clauses."""
    builder = ClauseBuilder()
    for block in blocks:
        if block.kind == "heading":
            builder.heading(block)
        elif block.kind == "item":
            builder.item(block)
        elif block.kind == "row":
            builder.row(block)
        else:
            builder.paragraph(block)
    clauses = builder.finish()
    return builder.title, clauses
