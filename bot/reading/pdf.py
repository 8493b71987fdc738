"""PDF policy files into the same `Block`s as Markdown: lines in reading order, page headers,
footers and numbers dropped, headings told by their numbers; pages and decompressed streams
bounded by `ReadLimits`."""

from __future__ import annotations

import io
import itertools
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.models import Block, PolicyError
from bot.reading.shared import (
    NUMBERED_HEADING,
    Fields,
    ReadLimits,
    numbered_level,
    over_ceiling,
    text_block,
)

_WORDS = re.compile(r"\S+")
_PAGE_NUMBER = re.compile(
    r"^(?:[-–—]\s*)?(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?(?:\s*[-–—])?$", re.I
)
_PDF_ITEM = re.compile(r"^(?:[•▪◦●○■\-–*]|\(?[a-z0-9]{1,3}[.)])\s+(\S.*)$")
_SENTENCE_END = re.compile(r"[.!?:;][\"'”’)]*$")


#: What pypdf raises, besides its own errors, on a damaged file (found by fuzzing).
_PDF_DAMAGE: tuple[type[Exception], ...] = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    OSError,
    RecursionError,
    ArithmeticError,  # OverflowError: a startxref offset beyond any file
    # pypdf's internal `assert`s: an object reference inside a content stream trips one.
    AssertionError,
)


def _open_pdf(data: bytes, limits: ReadLimits) -> Any:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

    # PyPdfError: also pypdf's own limits (reference loops, sizes) on a damaged file.
    damaged: tuple[type[Exception], ...] = (*_PDF_DAMAGE, PyPdfError)

    if not data.lstrip().startswith(b"%PDF"):
        raise PolicyError("The file is not a PDF (it does not start with %PDF).")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:  # an empty user password only restricts printing or copying
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except (DependencyError, NotImplementedError):
                opened = False
            if not opened:
                raise PolicyError(
                    "The PDF is password-protected. Remove the password and upload it again."
                )
        pages = len(reader.pages)
    except (PolicyError, MemoryError):
        raise
    except FileNotDecryptedError:
        raise PolicyError(
            "The PDF is password-protected. Remove the password and upload it again."
        ) from None
    except LimitReachedError as error:
        raise _pdf_limit(error, limits) from None
    except damaged as error:
        raise PolicyError(
            f"The PDF cannot be read; it looks damaged ({_short(error)}). "
            "Export it again from the original document and upload that."
        ) from None
    if pages > limits.pdf_pages:
        raise PolicyError(f"The PDF has {pages:,} pages; {over_ceiling(limits.pdf_pages, 'pages')}")
    return reader


def _pdf_limit(error: Exception, limits: ReadLimits) -> PolicyError:
    """One of pypdf's ceilings (which `_pdf_configuration` sets) reached."""
    text = str(error).lower()
    if any(word in text for word in ("decompress", "stream", "output", "length", "buffer")):
        return PolicyError(limits.too_expanded("The PDF"))
    return PolicyError(
        f"The PDF is past one of the reader's limits ({_short(error)}); a real policy never "
        "is. It was not read."
    )


def _short(error: Exception) -> str:
    if isinstance(error, AssertionError):  # pypdf's asserts say nothing an uploader can use
        return "unexpected content"
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:120]


@dataclass
class _Line:
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


class _LineCollector:
    """pypdf's text visitor: text runs with their font, size and position, into `_Line`s (a
    newline in a run is where pypdf's own extraction breaks the line)."""

    def __init__(self, page: int) -> None:
        self.page = page
        self.lines: list[_Line] = []
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
            _Line(
                text,
                sizes.most_common(1)[0][0] if sizes else 0.0,
                chars > 0 and bold_chars >= 0.9 * chars,
                first[3],
                first[4],
                self.page,
            )
        )


def _pdf_page_lines(reader: Any, limits: ReadLimits) -> list[list[_Line]]:
    from pypdf.errors import LimitReachedError, PyPdfError

    damaged: tuple[type[Exception], ...] = (*_PDF_DAMAGE, PyPdfError)
    pages = []
    extracted = 0
    for number, page in enumerate(reader.pages):
        collector = _LineCollector(number)
        try:
            page.extract_text(visitor_text=collector.visit)
            collector.end_line()
        except MemoryError:
            raise
        except LimitReachedError as error:
            raise _pdf_limit(error, limits) from None
        except damaged as error:
            raise PolicyError(
                f"The PDF cannot be read; a page is damaged ({_short(error)})."
            ) from None
        extracted += sum(len(line.text) + 1 for line in collector.lines)
        if extracted > limits.unpacked_bytes:
            raise PolicyError(limits.too_expanded("The PDF's text"))
        pages.append(collector.lines)
    return pages


def _repeated_margins(pages: list[list[str]]) -> set[str]:
    """Lines that open or close most pages (running headers and footers), digits ignored so
    "Page 3 of 9" matches "Page 4 of 9"."""
    if len(pages) < 2:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        margin = set(lines[:2] + lines[-2:])
        counts.update({re.sub(r"\d+", "#", line) for line in margin})
    threshold = max(2, (len(pages) + 1) // 2)
    return {line for line, count in counts.items() if count >= threshold}


def _pdf_heading(line: str, first: bool) -> int:
    """The heading level a PDF line reads as, or 0 for body text."""
    if len(line) > 90 or _SENTENCE_END.search(line):
        return 0
    words = _WORDS.findall(line)
    numbered = NUMBERED_HEADING.match(line)
    if numbered and len(words) <= 12 and numbered.group(2)[:1].isupper():
        return numbered_level(line)
    if line.isupper() and any(c.isalpha() for c in line) and len(words) <= 12:
        return 1 if first else 2
    if first and len(words) <= 12:
        return 1
    return 0


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """pypdf logs and warns about every repair it makes; the uploader gets one clear message
    (or none, when the repair worked) instead."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _pdf_configuration(limits: ReadLimits) -> Any:
    """pypdf's own ceilings on decompressed streams, lowered to ours (its defaults are 75 MB
    per stream, whatever the upload limit)."""
    from pypdf import apply_configuration

    cap = limits.unpacked_bytes
    return apply_configuration(
        maximum_declared_stream_length=cap,
        array_based_stream_maximum_output_length=cap,
        jbig2_maximum_output_length=cap,
        lzw_maximum_output_length=cap,
        run_length_maximum_output_length=cap,
        zlib_maximum_output_length=cap,
        brotli_maximum_output_length=cap,
        image_maximum_buffer_size=cap,
        stream_decoding_work_maximum_length=cap,
    )


def read_pdf(data: bytes, limits: ReadLimits | None = None) -> tuple[Fields, list[Block]]:
    limits = limits or ReadLimits()
    with _quiet_pypdf(), _pdf_configuration(limits):
        reader = _open_pdf(data, limits)
        pages = _pdf_page_lines(reader, limits)
        title = _pdf_title(reader)
    if not pages:
        raise PolicyError("The PDF has no pages; it looks damaged.")
    if not any(pages):
        raise PolicyError(
            "The PDF has no text layer (it looks scanned). Upload the original document, "
            "or a PDF exported from it, rather than a scan."
        )
    margins = _repeated_margins([[line.text for line in page] for page in pages])
    lines = [
        line
        for page in pages
        for line in page
        if not _PAGE_NUMBER.match(line.text) and re.sub(r"\d+", "#", line.text) not in margins
    ]
    fields: Fields = {"title": title} if title else {}
    return fields, _styled_blocks(lines) or _pdf_blocks([line.text for line in lines])


def _pdf_title(reader: Any) -> str:
    """The document title from the PDF's metadata, unless it is only a file name, as
    exporters often leave it ("Microsoft Word - policy.docx")."""
    try:
        title = " ".join(str((reader.metadata or {}).get("/Title") or "").split())
    except Exception:  # metadata is optional; a damaged info dictionary loses only the title
        return ""
    if re.search(r"\.(docx?|pdf|odt|rtf|txt)$", title, re.I) or title.startswith("Microsoft"):
        return ""
    return title


def _pdf_blocks(lines: list[str]) -> list[Block]:
    """Rejoin wrapped lines into paragraphs: a paragraph ends at a heading, a list item, a
    numbered clause, or a line that ends a sentence well short of the usual width."""
    width = max((len(line) for line in lines), default=0)
    blocks: list[Block] = []
    current: list[str] = []
    kind, level, start = "paragraph", 0, 0

    def flush(end: int) -> None:
        nonlocal current
        if current:
            text = ""
            for part in current:
                if text.endswith("-") and part[:1].islower():
                    text = text[:-1] + part  # a word hyphenated at the line end
                else:
                    text = f"{text} {part}".strip()
            blocks.append(text_block(kind, text, level, start, end))
        current = []

    for number, line in enumerate(lines, start=1):
        heading = _pdf_heading(line, first=not blocks and not current)
        item = _PDF_ITEM.match(line)
        if heading:
            flush(number - 1)
            blocks.append(text_block("heading", line, heading, number))
            continue
        if item or NUMBERED_HEADING.match(line) or not current:
            flush(number - 1)
            kind, level, start = ("item", 0, number) if item else ("paragraph", 0, number)
            current = [item.group(1) if item else line]
        else:
            current.append(line)
        if _SENTENCE_END.search(line) and len(line) < 0.8 * width:
            flush(number)
            kind, level = "paragraph", 0
    flush(len(lines))
    return blocks


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
    item = _PDF_ITEM.match(text)
    return item.group(1) if item else None


def _most_common(values: Counter[float]) -> float:
    return values.most_common(1)[0][0] if values else 0.0


class _Styles:
    """What the document's own typesetting says: its body size (the size most of its text is
    set in), which lines are headings (larger than the body, or bold at its size) and their
    levels by size, and the line pitch, so a larger gap tells where a paragraph ends."""

    def __init__(self, lines: list[_Line]) -> None:
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

    def _is_body(self, line: _Line) -> bool:
        return abs(line.size - self.body) < 0.75 and not (line.bold and self.bold_means_heading)

    def key(self, line: _Line, previous: _Line | None) -> tuple[float, bool] | None:
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
                or bool(_SENTENCE_END.search(previous.text))
            )
            return (line.size, True) if starts and not text.endswith(".") else None
        return None

    def continues(self, heading: _Line, line: _Line) -> bool:
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


def _styled_blocks(lines: list[_Line]) -> list[Block] | None:
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
    last: _Line | None = None

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


def _ends_paragraph(line: _Line | None) -> bool:
    """Without spacing to go by, a line that ends a sentence ends its paragraph."""
    return line is not None and bool(_SENTENCE_END.search(line.text))


def _joined(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if text.endswith("-") and part[:1].islower():
            text = text[:-1] + part  # a word hyphenated at the line end
        else:
            text = f"{text} {part}".strip()
    return text
