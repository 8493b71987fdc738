"""HTML, DOCX and PDF policy files into the same `Block`s as Markdown, so clauses keep numbers.

Each reader takes the file's bytes and returns (front matter fields, blocks), like
`bot.reading.ingest.read_markdown`; it raises PolicyError with a message for the uploader when the
file cannot be read (corrupt, encrypted, scanned without text, wrong encoding).
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from bot.models import Block, PolicyError
from bot.reading.markdown import clean_inline

Fields = dict[str, str | list[str]]

#: What the block ceiling counts, as an uploader is told.
BLOCKS = "paragraphs, list items and table rows"


@dataclass(frozen=True)
class ReadLimits:
    """What one document may hold, far above any real policy (a long legal policy has a few
    hundred sections and a few thousand paragraphs): past them an upload is refused before
    anything is stored, so a hostile file cannot make the reader, the comparison or the index
    arbitrarily large."""

    upload_bytes: int = 10 * 2**20
    #: A DOCX package (all its parts together) or a PDF stream, once decompressed, may be this
    #: many times the upload limit: real Word XML compresses about tenfold, but most of a large
    #: policy file is pictures, which do not compress at all.
    expansion: int = 4
    #: ... and at least this much whatever the upload limit: an empty Word document already
    #: unpacks to a few hundred KB of styles and theme.
    unpacked_floor: int = 8 * 2**20
    sections: int = 5_000
    blocks: int = 50_000
    clauses: int = 10_000
    pdf_pages: int = 3_000
    #: Parts in a DOCX package; Word writes a few dozen, plus one per picture.
    package_parts: int = 10_000

    @property
    def unpacked_bytes(self) -> int:
        return max(self.expansion * self.upload_bytes, self.unpacked_floor)

    def too_expanded(self, what: str) -> str:
        return (
            f"{what} expands to more than {_megabytes(self.unpacked_bytes)} MB when "
            "decompressed, the most policybot unpacks for an upload (the larger of "
            f"{self.expansion} times the {_megabytes(self.upload_bytes)} MB upload limit and "
            f"{_megabytes(self.unpacked_floor)} MB). No real policy comes near that; the file "
            "looks built to exhaust the server (a compression bomb), so it was not read."
        )


def _megabytes(size: int) -> str:
    return f"{size / 2**20:g}"


def over_ceiling(limit: int, what: str) -> str:
    return (
        f"policybot reads at most {limit:,} {what} per document, far more than a long legal "
        "policy has. Split it into several documents and upload each."
    )


#: A heading that starts with its section number: "4.2 Customer data", "Section 7. Devices".
_NUMBERED_HEADING = re.compile(r"^(?:section\s+|article\s+)?(\d+(?:\.\d+)*)\.?\s+(\S.*)$", re.I)
_MULTI_LEVEL_NUMBER = re.compile(r"^\d+(?:\.\d+)+\.?$")
_WORDS = re.compile(r"\S+")


def _block(kind: str, text: str, level: int = 0, line: int = 0, end_line: int = 0) -> Block:
    return Block(kind, " ".join(text.split()), level, line, end_line or line)


def _numbered_level(text: str) -> int:
    """ "4" -> 2, "4.2" -> 3: level 1 is the document title, as in Markdown."""
    match = _NUMBERED_HEADING.match(text)
    return 2 + match.group(1).count(".") if match else 2


# -- HTML --------------------------------------------------------------------------------------
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)


def _decode_html(data: bytes) -> str:
    """UTF-8 unless the page declares another charset; undecodable bytes are refused."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    encoding = "utf-8"
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        try:
            codec = codecs.lookup(declared.group(1).decode("ascii"))
            # "uu", "base64", "zlib" are codecs too, but not text encodings (found by fuzzing);
            # CPython marks which are (the flag `bytes.decode` itself checks).
            if not getattr(codec, "_is_text_encoding", True):
                raise LookupError(codec.name)
            encoding = codec.name
        except LookupError:
            encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise PolicyError(
            f"The file is not valid {encoding} text (byte {error.start} cannot be read). "
            "Save it as UTF-8 and upload it again."
        ) from None
    except UnicodeError:  # codecs such as "idna" refuse text without saying where
        raise PolicyError(
            f"The file cannot be read as {encoding}, the character set it declares. "
            "Save it as UTF-8 and upload it again."
        ) from None


class _HtmlBlocks(HTMLParser):
    """Collects headings, paragraphs, list items and table rows in document order."""

    _SKIP = frozenset({"script", "style", "head", "nav", "noscript", "template", "svg", "form"})
    _BREAKS = frozenset(
        {"p", "div", "section", "article", "main", "blockquote", "dd", "dt", "pre", "header"}
        | {"footer", "aside", "figure", "figcaption", "address", "body", "button"}
    )
    _HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.title = ""
        self._in_title = False
        self._skip_depth = 0
        self._text: list[str] = []
        self._start = 0
        #: The open headings and list items: text belongs to the innermost one.
        self._context: list[tuple[str, str, int]] = []  # (tag, block kind, level)
        self._list_depth = 0
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._row_is_header = False
        self._table_headers: list[list[str]] = []

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        if text:
            _, kind, level = self._context[-1] if self._context else ("", "paragraph", 0)
            line = self._start or self.getpos()[0]
            self.blocks.append(_block(kind, text, level, line, self.getpos()[0]))
        self._text = []
        self._start = 0

    def _close(self, tag: str) -> None:
        if any(t == tag for t, _, _ in self._context):
            while self._context and self._context.pop()[0] != tag:
                pass

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif self._skip_depth:
            return
        elif self._row is not None and tag in {"td", "th"}:
            self._cell = []
            self._row_is_header = self._row_is_header and tag == "th"
        elif self._cell is not None:
            self._cell.append(" ")  # markup inside a cell only separates words
        elif tag in self._HEADINGS:
            self._flush()
            self._context.append((tag, "heading", int(tag[1])))
        elif tag in {"ul", "ol"}:
            self._flush()
            self._list_depth += 1
        elif tag == "li":
            self._flush()
            if self._context and self._context[-1][0] == "li":
                self._close("li")  # <li> without </li>: the next item closes it
            self._context.append(("li", "item", max(self._list_depth - 1, 0)))
        elif tag == "table":
            self._flush()
            self._table_headers.append([])
        elif tag == "tr":
            self._flush()
            self._row, self._row_is_header = [], True
        elif tag in self._BREAKS or tag in {"br", "hr"}:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip_depth = max(self._skip_depth - 1, 0)
        elif tag == "title":
            self._in_title = False
        elif self._skip_depth:
            return
        elif tag in {"td", "th"} and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._end_row()
        elif tag == "table" and self._table_headers:
            self._table_headers.pop()
        elif tag in {"ul", "ol"}:
            self._flush()
            self._close("li")
            self._list_depth = max(self._list_depth - 1, 0)
        elif tag in self._HEADINGS or tag == "li":
            self._flush()
            self._close(tag)
        elif tag in self._BREAKS:
            self._flush()

    def _end_row(self) -> None:
        row, self._row = self._row or [], None
        if not any(row):
            return
        if self._row_is_header and self._table_headers and not self._table_headers[-1]:
            self._table_headers[-1] = row
            return
        headers = self._table_headers[-1] if self._table_headers else []
        line = self.getpos()[0]
        self.blocks.append(_block("row", _table_row_text(headers, row), 0, line, line))

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip_depth:
            return
        elif self._row is not None:
            if self._cell is not None:
                self._cell.append(data)
        else:
            if not self._start and data.strip():
                self._start = self.getpos()[0]
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    def parse_html_declaration(self, i: int) -> int:
        """`<!...>` markup the standard library cannot parse (`<![x>`, a broken DOCTYPE
        subset) is skipped up to its `>`, as browsers treat it as a bogus comment; the
        library raises AssertionError for it (found by fuzzing)."""
        try:
            return super().parse_html_declaration(i)
        except AssertionError:
            end = self.rawdata.find(">", i + 2)
            return -1 if end < 0 else end + 1


def _table_row_text(headers: list[str], row: list[str]) -> str:
    """A table row as one readable unit: "Channel: LinkedIn; Who may post: Marketing"."""
    if headers and len(headers) == len(row):
        return "; ".join(f"{h}: {c}" if h else c for h, c in zip(headers, row, strict=True) if c)
    return "; ".join(c for c in row if c)


def read_html(data: bytes, limits: ReadLimits | None = None) -> tuple[Fields, list[Block]]:
    parser = _HtmlBlocks()
    try:
        parser.feed(_decode_html(data))
        parser.close()
    except AssertionError as error:  # html.parser's remaining "cannot parse this" signal
        raise PolicyError(
            f"The HTML cannot be read near line {parser.getpos()[0]} ({error}). "
            "Save the page again from its editor or browser and upload that."
        ) from None
    fields: Fields = {}
    title = " ".join(parser.title.split())
    if title:
        fields["title"] = title
    return fields, [b for b in parser.blocks if b.text]


# -- DOCX --------------------------------------------------------------------------------------
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted OOXML and old binary .doc files
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


#: Roman numerals past this are not written (no letter for 5,000); the number is shown in
#: digits instead, which also keeps `<w:start w:val="100000000000"/>` from taking forever.
_MAX_ROMAN = 3999


def _roman(number: int) -> str:
    if number > _MAX_ROMAN:
        return str(number)
    numerals = [(1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc")]
    numerals += [(50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")]
    out = ""
    for value, letters in numerals:
        while number >= value:
            out += letters
            number -= value
    return out


#: Past "zzz" a list label in letters says nothing; shown in digits (and a huge w:start
#: cannot make a huge label).
MAX_LETTER_REPEATS = 3


def _letter(number: int) -> str:
    """Word's letter numbering: a … z, then aa, bb … zz, then aaa (not aa, ab as in columns)."""
    if number < 1:
        return str(number)
    repeats, rest = divmod(number - 1, 26)
    if repeats >= MAX_LETTER_REPEATS:
        return str(number)
    return chr(ord("a") + rest) * (repeats + 1)


def _format_number(value: int, number_format: str) -> str:
    if number_format == "lowerLetter":
        return _letter(value)
    if number_format == "upperLetter":
        return _letter(value).upper()
    if number_format == "lowerRoman":
        return _roman(value)
    if number_format == "upperRoman":
        return _roman(value).upper()
    if number_format == "decimalZero":
        return f"{value:02d}"
    return str(value)


class _Numbering:
    """Word's automatic numbering: the "4.2" a heading shows is not in its text, so count it.

    Counters are kept per abstract numbering definition, as Word does for headings that share
    one multilevel list; starting a level resets the levels below it.
    """

    def __init__(self, document: Any) -> None:
        self.levels: dict[str, dict[int, tuple[str, str, int]]] = {}  # abstract -> lvl -> def
        self.abstract_of: dict[str, str] = {}  # numId -> abstractNumId
        self.counters: dict[str, dict[int, int]] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return
        for abstract in root.iter(f"{_W}abstractNum"):
            abstract_id = abstract.get(f"{_W}abstractNumId", "")
            levels: dict[int, tuple[str, str, int]] = {}
            for lvl in abstract.iter(f"{_W}lvl"):
                levels[int(lvl.get(f"{_W}ilvl", "0"))] = (
                    _child_val(lvl, "numFmt") or "decimal",
                    _child_val(lvl, "lvlText") or "",
                    int(_child_val(lvl, "start") or "1"),
                )
            self.levels[abstract_id] = levels
        for num in root.iter(f"{_W}num"):
            abstract_id = _child_val(num, "abstractNumId")
            if abstract_id is not None:
                self.abstract_of[num.get(f"{_W}numId", "")] = abstract_id

    def label(self, num_id: str, level: int) -> str:
        """Advance the list and return its label as Word shows it ("4.2", "(a)"; "" for
        bullets)."""
        abstract_id = self.abstract_of.get(num_id)
        levels = self.levels.get(abstract_id or "", {})
        if abstract_id is None or level not in levels:
            return ""
        counters = self.counters.setdefault(abstract_id, {})
        number_format, text, start = levels[level]
        counters[level] = counters.get(level, start - 1) + 1
        for deeper in [k for k in counters if k > level]:
            del counters[deeper]
        if number_format in {"bullet", "none"}:
            return ""

        def substitute(match: re.Match[str]) -> str:
            index = int(match.group(1)) - 1
            fmt, _, first = levels.get(index, ("decimal", "", 1))
            return _format_number(counters.get(index, first), fmt)

        return re.sub(r"%(\d)", substitute, text).strip()


def _child_val(element: Any, name: str) -> str | None:
    child = element.find(f"{_W}{name}")
    return None if child is None else child.get(f"{_W}val")


def _style_chain(paragraph: Any) -> Iterator[Any]:
    """The paragraph's style, then the styles it is based on. A damaged file can base a style
    on itself or on a style based on it (found by fuzzing: the walk never ended), so a style
    seen before ends the chain."""
    seen: list[Any] = []  # the elements themselves: lxml compares them by identity
    style = paragraph.style
    while style is not None and not any(style.element is element for element in seen):
        seen.append(style.element)
        yield style
        style = style.base_style


def _paragraph_numbering(paragraph: Any) -> tuple[str, int] | None:
    """(numId, level) from the paragraph's own properties or, failing that, its styles'."""
    ppr = paragraph._p.pPr
    num_pr = ppr.numPr if ppr is not None else None
    for style in _style_chain(paragraph):
        if num_pr is not None:
            break
        style_ppr = style.element.pPr
        num_pr = style_ppr.numPr if style_ppr is not None else None
    if num_pr is None or num_pr.numId is None:
        return None
    num_id = str(num_pr.numId.val)
    if num_id == "0":
        return None  # numbering explicitly switched off
    level = int(num_pr.ilvl.val) if num_pr.ilvl is not None else 0
    return num_id, level


def _heading_level(paragraph: Any) -> int:
    """1 for the Title style, N for Heading N (or outline level N-1); 0 for body text."""
    for style in _style_chain(paragraph):
        name = (style.name or "").lower()
        if name == "title":
            return 1
        heading = re.fullmatch(r"heading\s*([1-9])", name)
        if heading:
            return int(heading.group(1))
        style_ppr = style.element.pPr
        outline = _child_val(style_ppr, "outlineLvl") if style_ppr is not None else None
        if outline is not None and outline.isdigit() and int(outline) < 9:
            return int(outline) + 1
    ppr = paragraph._p.pPr
    outline = _child_val(ppr, "outlineLvl") if ppr is not None else None
    if outline is not None and outline.isdigit() and int(outline) < 9:
        return int(outline) + 1
    return 0


def _is_title(paragraph: Any) -> bool:
    style = paragraph.style
    return style is not None and (style.name or "").lower() == "title"


def _is_bold_line(paragraph: Any, text: str) -> bool:
    """A short, wholly bold line without final punctuation reads as a heading in Word files
    that use no heading styles at all."""
    if len(text) > 90 or text.endswith((".", ",", ";", "?", "!")):
        return False
    runs = [r for r in paragraph.runs if r.text.strip()]
    return bool(runs) and all(r.bold for r in runs)


def _docx_damaged(error: Exception) -> PolicyError:
    return PolicyError(
        f"The Word file cannot be opened; it looks damaged ({type(error).__name__}). "
        "Open it in Word, save it again as .docx and upload that."
    )


def _check_unpacked_size(data: bytes, limits: ReadLimits) -> None:
    """Inflate every part of the package once, counting the bytes as they come out, before
    python-docx (which reads whole parts into memory) sees it: the sizes the ZIP directory
    declares are the packer's word, and a bomb is free to lie there."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except MemoryError:
        raise
    except Exception as error:  # not a ZIP, a truncated directory, an unknown ZIP version
        raise _docx_damaged(error) from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.package_parts:
            raise PolicyError(
                f"The Word file is a package of {len(members):,} parts; a real one has a few "
                f"dozen, and policybot opens at most {limits.package_parts:,}."
            )
        unpacked = 0
        for member in members:
            try:
                with archive.open(member) as part:
                    while chunk := part.read(2**20):
                        unpacked += len(chunk)
                        if unpacked > limits.unpacked_bytes:
                            raise PolicyError(limits.too_expanded("The Word file"))
            except PolicyError:
                raise
            except MemoryError:
                raise
            except Exception as error:  # bad CRC, unknown compression, truncated data
                raise _docx_damaged(error) from None


def _xml_limit(error: Exception) -> PolicyError | None:
    """lxml's own ceilings, hit by a crafted part that is small enough to unpack, said plainly."""
    text = str(error).lower()
    if "memory" in text:
        raise MemoryError(text) from None  # the reader's memory limit, reported as such
    if "text node too long" in text or "huge text node" in text:
        return PolicyError(
            "The Word file holds one unbroken stretch of text longer than 10 MB; a real "
            "policy has paragraphs. It was not read."
        )
    if "depth" in text:
        return PolicyError(
            "The Word file's contents are nested more than 256 levels deep; a real policy "
            "never is. It was not read."
        )
    return None


def _open_docx(data: bytes, limits: ReadLimits) -> Any:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if data.startswith(_OLE_MAGIC):
        raise PolicyError(
            "The Word file is password-protected (or an old .doc file). Remove the password, "
            "save it as .docx and upload it again."
        )
    _check_unpacked_size(data, limits)
    try:
        return docx.Document(io.BytesIO(data))
    except MemoryError:
        raise
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as error:
        raise _xml_limit(error) or _docx_damaged(error) from None
    except Exception as error:  # lxml parse errors and the like from a damaged package
        raise _xml_limit(error) or PolicyError(
            f"The Word file cannot be read; its contents are damaged ({type(error).__name__})."
        ) from None


def _docx_body(document: Any) -> Iterator[Any]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for element in document.element.body.iterchildren():
        if element.tag == f"{_W}p":
            yield Paragraph(element, document)
        elif element.tag == f"{_W}tbl":
            yield Table(element, document)


def _table_rows(table: Any) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue  # a merged cell is returned once per grid column it spans
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        rows.append(cells)
    return rows


def read_docx(data: bytes, limits: ReadLimits | None = None) -> tuple[Fields, list[Block]]:
    limits = limits or ReadLimits()
    document = _open_docx(data, limits)
    try:
        _check_docx_blocks(document, limits)
        return _docx_blocks(document)
    except (PolicyError, MemoryError):
        raise
    except Exception as error:  # a package that opened but whose parts are malformed
        raise PolicyError(
            f"The Word file cannot be read; its contents are damaged ({type(error).__name__})."
        ) from None


def _check_docx_blocks(document: Any, limits: ReadLimits) -> None:
    """Paragraphs and table rows counted in the parsed XML, before a Python object is made for
    each (the costly part of reading a Word file)."""
    count = sum(1 for _ in document.element.body.iter(f"{_W}p", f"{_W}tr"))
    if count > limits.blocks:
        ceiling = over_ceiling(limits.blocks, BLOCKS)
        raise PolicyError(f"The Word file has {count:,} {BLOCKS}; {ceiling}")


def _docx_blocks(document: Any) -> tuple[Fields, list[Block]]:
    from docx.table import Table

    numbering = _Numbering(document)
    body = list(_docx_body(document))
    levels = [_heading_level(part) for part in body if not isinstance(part, Table)]
    styled_headings = any(levels)
    # With a Title paragraph, Heading 1 sits one level below it, as "##" does under "#".
    shift = 1 if any(_is_title(p) for p in body if not isinstance(p, Table)) else 0
    blocks: list[Block] = []
    for index, part in enumerate(body, start=1):
        if isinstance(part, Table):
            rows = [r for r in _table_rows(part) if any(r)]
            headers = rows[0] if len(rows) > 1 else []
            for row in rows[1:] if headers else rows:
                blocks.append(_block("row", _table_row_text(headers, row), 0, index))
            continue
        text = clean_inline(part.text)
        if not text:
            continue
        numbered = _paragraph_numbering(part)
        label = numbering.label(*numbered) if numbered else ""
        level = _heading_level(part)
        if level:
            if label and not _NUMBERED_HEADING.match(text):
                text = f"{label.rstrip('.')} {text}" if label[:1].isdigit() else text
            blocks.append(_block("heading", text, 1 if _is_title(part) else level + shift, index))
        elif not styled_headings and _is_bold_line(part, text):
            heading = f"{label.rstrip('.')} {text}" if label[:1].isdigit() else text
            blocks.append(_block("heading", heading, _numbered_level(heading), index))
        elif label and _MULTI_LEVEL_NUMBER.match(label):
            # "4.2.1" numbering on body text is a numbered clause, cited by that number.
            blocks.append(_block("paragraph", f"{label.rstrip('.')} {text}", 0, index))
        elif numbered:
            blocks.append(_block("item", text, numbered[1], index))
        else:
            blocks.append(_block("paragraph", text, 0, index))
    fields: Fields = {}
    properties = document.core_properties
    if (properties.title or "").strip():
        fields["title"] = properties.title.strip()
    if (properties.version or "").strip():
        fields["version"] = properties.version.strip()
    return fields, blocks


# -- PDF ---------------------------------------------------------------------------------------
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


def _pdf_page_lines(reader: Any, limits: ReadLimits) -> list[list[str]]:
    from pypdf.errors import LimitReachedError, PyPdfError

    damaged: tuple[type[Exception], ...] = (*_PDF_DAMAGE, PyPdfError)
    pages = []
    extracted = 0
    for page in reader.pages:
        try:
            text = page.extract_text() or ""
        except MemoryError:
            raise
        except LimitReachedError as error:
            raise _pdf_limit(error, limits) from None
        except damaged as error:
            raise PolicyError(
                f"The PDF cannot be read; a page is damaged ({_short(error)})."
            ) from None
        extracted += len(text)
        if extracted > limits.unpacked_bytes:
            raise PolicyError(limits.too_expanded("The PDF's text"))
        pages.append([" ".join(line.split()) for line in text.splitlines() if line.strip()])
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
    numbered = _NUMBERED_HEADING.match(line)
    if numbered and len(words) <= 12 and numbered.group(2)[:1].isupper():
        return _numbered_level(line)
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
    margins = _repeated_margins(pages)
    lines = [
        line
        for page in pages
        for line in page
        if not _PAGE_NUMBER.match(line) and re.sub(r"\d+", "#", line) not in margins
    ]
    fields: Fields = {"title": title} if title else {}
    return fields, _pdf_blocks(lines)


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
            blocks.append(_block(kind, text, level, start, end))
        current = []

    for number, line in enumerate(lines, start=1):
        heading = _pdf_heading(line, first=not blocks and not current)
        item = _PDF_ITEM.match(line)
        if heading:
            flush(number - 1)
            blocks.append(_block("heading", line, heading, number))
            continue
        if item or _NUMBERED_HEADING.match(line) or not current:
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
