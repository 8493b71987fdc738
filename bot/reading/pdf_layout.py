"""How a PDF page is drawn, read into lines with their size, weight and position (pypdf's
text visitor), and those lines into blocks by the document's own typography: the body size is
the most common; larger sizes rank as heading levels, bold at body size lowest; a wider gap
ends a paragraph; a bullet glyph starts a list item."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bot.models import Block
from bot.reading.shared import (
    text_block,
)

WORDS = re.compile(r"\S+")
PDF_ITEM = re.compile(r"^(?:[•▪◦●○■\-–*]|\(?[a-z0-9]{1,3}[.)])\s+(\S.*)$")
SENTENCE_END = re.compile(r"[.!?:;][\"'”’)]*$")


@dataclass
class Line:
    """One line of a page as drawn: its text, the size and weight most of it is set in, and
    where it starts (PDF points, y upwards)."""

    text: str
    size: float = 0.0
    bold: bool = False
    x: float = 0.0
    y: float = 0.0
    page: int = 0
    #: Set once the document's lines are all known: a larger gap above than its neighbours'.
    spaced: bool = False


#: Glyphs Word and LibreOffice draw list bullets with (Symbol and Wingdings use private-use
#: code points for theirs).
_BULLETS = "•▪◦●○■□–-*\uf0b7\uf0a7\uf0d8\uf0fc\uf076\u2022\u25aa\u2023\u2043"
_BULLET_FONTS = ("symbol", "wingding", "dingbat")
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.I)


def _font_facts(font: Any) -> tuple[bool, bool]:
    """(bold, a symbol font) from a font dictionary: its name or its descriptor's weight."""
    if not hasattr(font, "get"):
        return False, False
    name = str(font.get("/BaseFont") or "")
    descriptor = font.get("/FontDescriptor")
    weight: Any = descriptor.get("/FontWeight") if hasattr(descriptor, "get") else None
    heavy = isinstance(weight, (int, float)) and weight >= 600
    symbol = any(word in name.lower() for word in _BULLET_FONTS) or "opensymbol" in name.lower()
    return bool(_BOLD_FONT.search(name)) or heavy, symbol


class LineCollector:
    """pypdf's text visitor: text runs with their font, size and position, into `Line`s (a
    newline in a run is where pypdf's own extraction breaks the line)."""

    def __init__(self, page: int) -> None:
        self.page = page
        self.lines: list[Line] = []
        self._runs: list[tuple[str, float, bool, float, float]] = []

    def visit(self, text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        pieces = text.split("\n")
        for index, piece in enumerate(pieces):
            if index:
                self.end_line()
            if piece:
                self._add(piece, cm, tm, font, size)

    def _add(self, text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        a, b, c, d, e, f = (float(v) for v in tm)
        ca, cb, cc, cd, ce, cf = (float(v) for v in cm)
        scale = abs((a * ca + b * cc) * (c * cb + d * cd) - (a * cb + b * cd) * (c * ca + d * cc))
        points = float(size) * math.sqrt(scale) if isinstance(size, (int, float)) else 0.0
        x, y = e * ca + f * cc + ce, e * cb + f * cd + cf
        bold, symbol = _font_facts(font)
        if not all(math.isfinite(v) for v in (points, x, y)):
            points = x = y = 0.0
        # A bullet drawn in a symbol font says nothing about the line's own weight or size.
        self._runs.append((text, -1.0 if symbol else round(points * 2) / 2, bold, x, y))

    def end_line(self) -> None:
        runs, self._runs = self._runs, []
        text = " ".join("".join(run[0] for run in runs).split())
        if not text:
            return
        sizes: Counter[float] = Counter()
        bold_chars = chars = 0
        for piece, points, bold, _, _ in runs:
            count = len(piece.strip())
            if points < 0 or not count:
                continue
            sizes[points] += count
            chars += count
            bold_chars += count if bold else 0
        first = next((run for run in runs if run[0].strip()), runs[0])
        self.lines.append(
            Line(
                text,
                sizes.most_common(1)[0][0] if sizes else 0.0,
                chars > 0 and bold_chars >= 0.9 * chars,
                first[3],
                first[4],
                self.page,
            )
        )


#: Words a heading's line does not end on unless the heading goes on to the next line.
_CONTINUES = re.compile(
    r"(?:[,(&/–—-]|\b(?:and|or|of|for|the|a|an|to|in|on|with|by|at|from))$", re.I
)


def _glyph_bullet(text: str) -> bool:
    return text[:1] in _BULLETS and (text[:1] not in "-–*" or text[1:2] == " ")


def _bullet(text: str) -> str | None:
    """The text after a list item's bullet or number, or None for a line that is no item."""
    if _glyph_bullet(text):
        return text[1:].strip() or None
    item = PDF_ITEM.match(text)
    return item.group(1) if item else None


def _most_common(values: Counter[float]) -> float:
    return values.most_common(1)[0][0] if values else 0.0


class _Styles:
    """What the document's own typesetting says: its body size (the size most of its text is
    set in), which lines are headings (larger than the body, or bold at its size) and their
    levels by size, and the line pitch, so a larger gap tells where a paragraph ends."""

    def __init__(self, lines: list[Line]) -> None:
        sizes: Counter[float] = Counter()
        bold_at: Counter[bool] = Counter()
        for line in lines:
            sizes[line.size] += len(line.text)
        self.body = _most_common(sizes)
        for line in lines:
            if abs(line.size - self.body) < 0.75:
                bold_at[line.bold] += len(line.text)
        # A document set all in bold says nothing with bold.
        self.bold_means_heading = bold_at[True] < bold_at[False]
        pitches: Counter[float] = Counter()
        for previous, line in itertools.pairwise(lines):
            if self._is_body(previous) and self._is_body(line) and previous.page == line.page:
                gap = round(previous.y - line.y, 0)
                if gap > 0:
                    pitches[gap] += 1
        self.pitch = _most_common(pitches)
        widths = sorted(len(line.text) * line.size for line in lines if self._is_body(line))
        self.body_width = widths[int(0.9 * (len(widths) - 1))] if widths else 0.0
        for previous, line in itertools.pairwise(lines):
            gap = previous.y - line.y
            line.spaced = previous.page == line.page and self.pitch > 0 and gap > 1.3 * self.pitch
        self.spacing = any(line.spaced for line in lines)

    def _is_body(self, line: Line) -> bool:
        return abs(line.size - self.body) < 0.75 and not (line.bold and self.bold_means_heading)

    def key(self, line: Line, previous: Line | None) -> tuple[float, bool] | None:
        """The heading style a line is set in, or None for body text."""
        text = line.text
        if (
            line.size <= 0
            or len(text) > 200
            or not any(c.isalpha() for c in text)
            or text.endswith((",", ";"))
            or _glyph_bullet(text)
        ):
            return None
        if line.size >= self.body + 0.75:
            return (line.size, line.bold)
        if line.bold and self.bold_means_heading and abs(line.size - self.body) < 0.75:
            # Bold at body size is a heading only where a paragraph could start.
            starts = (
                previous is None
                or previous.page != line.page
                or line.spaced
                or not self._is_body(previous)
                or bool(SENTENCE_END.search(previous.text))
            )
            return (line.size, True) if starts and not text.endswith(".") else None
        return None

    def continues(self, heading: Line, line: Line) -> bool:
        """Whether `line` is the heading's text wrapped onto the next line."""
        return (
            heading.page == line.page
            and 0 < heading.y - line.y <= 1.6 * max(line.size, 1.0)
            and (
                line.text[:1].islower()
                or bool(_CONTINUES.search(heading.text))
                or heading.text.count("(") > heading.text.count(")")
                or len(heading.text) * heading.size >= 0.7 * self.body_width
            )
        )


def styled_blocks(lines: list[Line]) -> list[Block] | None:
    """Blocks by the document's typesetting, or None when it has none to go by (every line
    one size and weight): then the text alone tells headings, as in `_pdf_blocks`."""
    styles = _Styles(lines)
    keys = [styles.key(line, lines[i - 1] if i else None) for i, line in enumerate(lines)]
    if not any(keys):
        return None
    ranked = sorted({key for key in keys if key}, key=lambda k: (k[0], k[1]), reverse=True)
    levels = {key: min(1 + rank, 6) for rank, key in enumerate(ranked)}
    indents = sorted({round(line.x / 6) for line in lines if _bullet(line.text) is not None})
    blocks: list[Block] = []
    current: list[str] = []
    kind, level, start = "paragraph", 0, 0
    heading_key: tuple[float, bool] | None = None
    last: Line | None = None

    def flush(end: int) -> None:
        nonlocal current
        if current:
            blocks.append(text_block(kind, _joined(current), level, start, end))
        current = []

    for number, line in enumerate(lines, start=1):
        key = keys[number - 1]
        if key is not None:
            if heading_key == key and last is not None and styles.continues(last, line):
                current.append(line.text)
            else:
                flush(number - 1)
                kind, level, start, current = "heading", levels[key], number, [line.text]
            heading_key, last = key, line
            continue
        item = _bullet(line.text)
        if (
            heading_key is not None
            or item is not None
            or not current
            or (line.spaced if styles.spacing else _ends_paragraph(last))
        ):
            flush(number - 1)
            if item is not None:
                depth = indents.index(round(line.x / 6)) if round(line.x / 6) in indents else 0
                kind, level, start, current = "item", min(depth, 3), number, [item]
            else:
                kind, level, start, current = "paragraph", 0, number, [line.text]
        else:
            current.append(line.text)
        heading_key, last = None, line
    flush(len(lines))
    return blocks


def _ends_paragraph(line: Line | None) -> bool:
    """Without spacing to go by, a line that ends a sentence ends its paragraph."""
    return line is not None and bool(SENTENCE_END.search(line.text))


def _joined(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if text.endswith("-") and part[:1].islower():
            text = text[:-1] + part  # a word hyphenated at the line end
        else:
            text = f"{text} {part}".strip()
    return text
