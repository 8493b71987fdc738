"""Structural blocks into citable clauses: a sentence to a short paragraph, with its section."""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from bot.models import Block, Clause

#: Clause length bounds in characters. Short units are merged with a neighbour; long ones are
#: cut at sentence boundaries, so a quote answers a question and fits in a chat message.
MIN_CHARS = 80
TARGET_CHARS = 320
MAX_CHARS = 600
#: The most characters of lead-ins (the list's own, then each parent item's) quoted before an
#: item: past it, outer lead-ins are cut to their first words, so the nearest one stays whole.
LEAD_IN_CHARS = 200

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
    #: List items only: the lead-ins each item is quoted with, outermost first.
    lead_ins: tuple[str, ...] = ()
    #: Which clauses may merge when too short: only those of one group (one table, or the
    #: items of one list under the same lead-ins; every paragraph is in group None).
    group: Hashable = None


@dataclass(frozen=True)
class _OpenItem:
    """A list item that may turn out to introduce a nested list."""

    level: int
    text: str


def _last_sentence(text: str) -> str:
    sentences = split_sentences(text)
    return sentences[-1] if sentences else text


def _first_words(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, max(limit - 1, 1))
    return text[: cut if cut > 0 else max(limit - 1, 1)].rstrip(" ,;:") + "…"


def lead_in_prefix(lead_ins: Sequence[str], limit: int = LEAD_IN_CHARS) -> str:
    """The lead-ins an item is quoted with, within `limit` characters: whole when they fit;
    else each one's last sentence (the one that introduces what follows); else the nearest
    one whole and the outer ones cut to their first words."""
    kept = [text.strip() for text in lead_ins if text.strip()]
    for candidate in (kept, [_last_sentence(text) for text in kept]):
        if len(" ".join(candidate)) <= limit:
            return " ".join(candidate)
    kept = [_last_sentence(text) for text in kept]
    inner = _first_words(kept[-1], limit)
    room = limit - len(inner) - 1
    outer: list[str] = []
    for text in kept[:-1]:
        share = room // (len(kept) - 1) - 1
        if share >= 20:
            outer.append(_first_words(text, share))
    return " ".join([*outer, inner])


def _quoted_whole(lead_in: str) -> bool:
    """Whether a lead-in is quoted as it stands before the items it introduces: when not, it
    is a clause of its own too, so none of its words are lost."""
    return lead_in_prefix([lead_in]) == lead_in.strip()


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


def pack(
    units: Sequence[str],
    target: int = TARGET_CHARS,
    limit: int = MAX_CHARS,
    shortest: int = MIN_CHARS,
) -> list[str]:
    """Group consecutive sentences or short items into clauses of about `target` characters;
    a piece under `shortest` always joins its neighbour when it fits."""
    pieces = [p for unit in units for p in _cut_long(unit.strip(), limit) if p]
    groups: list[str] = []
    current = ""
    for piece in pieces:
        if not current:
            current = piece
        elif len(current) < shortest or len(current) + 1 + len(piece) <= target:
            if len(current) + 1 + len(piece) > limit:
                groups.append(current)
                current = piece
            else:
                current = f"{current} {piece}"
        else:
            groups.append(current)
            current = piece
    if current:
        if groups and len(current) < shortest and len(groups[-1]) + 1 + len(current) <= limit:
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
        #: The list being read: its lead-in, the items that may introduce a nested list (the
        #: newest last), and a number telling this list from the next.
        self._list_lead_in = ""
        self._open_items: list[_OpenItem] = []
        self._lists = 0
        self._lists_first_group = False
        #: Each clause's merge group by ordinal (see `_Pending.group`).
        self._clause_groups: dict[int, Hashable] = {}

    # -- headings -----------------------------------------------------------------------------
    def heading(self, block: Block) -> None:
        self._end_list()
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
        self._end_list()
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
        """A list item is quoted with its lead-ins: the sentence introducing the list, then
        each parent item when it is nested. An item that a deeper one follows introduces
        that sub-list: it is quoted with each of its sub-items, not on its own."""
        if not self._open_items:
            self._start_list()
        parent = self._open_items[-1] if self._open_items else None
        if parent is not None and block.level > parent.level:
            self._take_back(parent)
        while self._open_items[-1:] and self._open_items[-1].level >= block.level:
            self._open_items.pop()
        lead_ins = (self._list_lead_in, *(i.text for i in self._open_items))
        lead_ins = tuple(text for text in lead_ins if text)
        group = ("list", self._lists, lead_ins)
        if self._pending.parts and self._pending.group != group:
            self.flush()
        if self._list_lead_in and not self._pending.parts and self._lists_first_group:
            self._pending.line_start = self._lead_in_lines[0]
        self._lists_first_group = False
        self._pending.from_list = True
        self._pending.lead_ins = lead_ins
        self._pending.group = group
        self._add_text(block)
        self._open_items.append(_OpenItem(block.level, block.text))

    def _start_list(self) -> None:
        if self._pending.parts:
            self.flush()
        self._lists += 1
        lead_in, self._lead_in = self._lead_in, ""
        if lead_in and not _quoted_whole(lead_in):
            self._add_text(Block("paragraph", lead_in, 0, *self._lead_in_lines))
            self.flush()
        self._list_lead_in = lead_in
        self._lists_first_group = bool(lead_in)

    def _take_back(self, parent: _OpenItem) -> None:
        """The newest item turned out to introduce a sub-list: when it only introduces it
        ("..., in particular:"), out of the pending text, since each sub-item quotes it; the
        siblings before it are emitted under their own lead-ins."""
        pending = self._pending
        introduces = parent.text.rstrip().endswith(":") and _quoted_whole(parent.text)
        if pending.parts and pending.parts[-1] == parent.text and introduces:
            pending.parts.pop()
            if pending.parts:
                self.flush()
            else:
                self._pending = _Pending(line_start=pending.line_start)

    def _end_list(self) -> None:
        if self._open_items or self._list_lead_in:
            self.flush()
        self._open_items = []
        self._list_lead_in = ""

    def row(self, block: Block) -> None:
        """Table rows group with each other, never with a list or its lead-in."""
        if not self._pending.from_table:
            self._end_list()
            self.flush()
            self._lead_in = ""
        self._pending.from_list = self._pending.from_table = True
        self._pending.group = "table"
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
        prefix_text = lead_in_prefix(pending.lead_ins)
        prefix = f"{prefix_text} " if prefix_text else ""
        # The lead-in is quoted with each piece, so the pieces leave room for it.
        limit = MAX_CHARS - len(prefix)
        units: list[str] = []
        for part in pending.parts:
            units.extend(split_sentences(part) if len(part) > limit else [part])
        # List items are rules of their own: merged only when too short to quote alone, and
        # an item quoted with its lead-ins is as long as they make it.
        if pending.lead_ins:
            shortest = target = MIN_CHARS - len(prefix)
        else:
            shortest = MIN_CHARS
            target = MIN_CHARS if pending.from_list else TARGET_CHARS - len(prefix)
            target = max(min(target, limit), MIN_CHARS // 2)
        for text in pack(units, target=target, limit=limit, shortest=shortest):
            self._emit(
                prefix + text if prefix and not text.startswith(prefix_text) else text,
                pending.line_start,
                pending.line_end,
                section_override,
            )
            self._clause_groups[len(self.clauses)] = pending.group

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
        self._end_list()
        self.flush()
        return self._merge_orphans(self.clauses, self._clause_groups)

    @staticmethod
    def _merge_orphans(
        clauses: list[Clause], groups: dict[int, Hashable] | None = None
    ) -> list[Clause]:
        """A clause under the minimum joins its neighbour in the same section and group (see
        `_Pending.group`: a list's last item never joins the paragraph after the list) when
        it fits."""
        groups = groups or {}
        merged: list[Clause] = []
        for clause in clauses:
            previous = merged[-1] if merged else None
            if (
                previous is not None
                and groups.get(previous.ordinal) == groups.get(clause.ordinal)
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
