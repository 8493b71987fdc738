"""PDF policy files into the same `Block`s as Markdown: pages read in order within
`ReadLimits` (pages, decompressed streams), running headers, footers and page numbers dropped,
then headings and paragraphs from the document's own typography (`pdf_layout.py`), or by their
numbers and capitals where a file is set in one size and weight."""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.models import Block, PolicyError
from bot.reading.pdf_layout import PDF_ITEM, SENTENCE_END, WORDS, Line, LineCollector, styled_blocks
from bot.reading.shared import (
    NUMBERED_HEADING,
    Fields,
    ReadLimits,
    numbered_level,
    over_ceiling,
    text_block,
)

_PAGE_NUMBER = re.compile(
    r"^(?:[-–—]\s*)?(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?(?:\s*[-–—])?$", re.I
)


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


def _pdf_page_lines(reader: Any, limits: ReadLimits) -> list[list[Line]]:
    from pypdf.errors import LimitReachedError, PyPdfError

    damaged: tuple[type[Exception], ...] = (*_PDF_DAMAGE, PyPdfError)
    pages = []
    extracted = 0
    for number, page in enumerate(reader.pages):
        collector = LineCollector(number)
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
    if len(line) > 90 or SENTENCE_END.search(line):
        return 0
    words = WORDS.findall(line)
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
    return fields, styled_blocks(lines) or _pdf_blocks([line.text for line in lines])


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
        item = PDF_ITEM.match(line)
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
        if SENTENCE_END.search(line) and len(line) < 0.8 * width:
            flush(number)
            kind, level = "paragraph", 0
    flush(len(lines))
    return blocks
