"""DOCX policy files into the same `Block`s as Markdown: Word's heading styles, its automatic
numbering (so clauses keep their numbers), lists and tables; the package's unpacked size is
counted while decompressing, against `ReadLimits`."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

from bot.models import Block, PolicyError
from bot.reading.markdown import clean_inline
from bot.reading.shared import (
    BLOCKS,
    NUMBERED_HEADING,
    Fields,
    ReadLimits,
    numbered_level,
    over_ceiling,
    table_row_text,
    text_block,
)

_MULTI_LEVEL_NUMBER = re.compile(r"^\d+(?:\.\d+)+\.?$")
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


_LIST_STYLE = re.compile(r"^list(?: bullet| number| continue| paragraph)? ([2-9])$")


def _list_style_depth(paragraph: Any) -> int:
    """Word's "List Bullet 2" (and "List Number 3", ...) nest by style, numbered at level 0
    of a list of their own: the style's number is the depth."""
    for style in _style_chain(paragraph):
        match = _LIST_STYLE.match((style.name or "").strip().lower())
        if match:
            return int(match.group(1)) - 1
    return 0


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
                blocks.append(text_block("row", table_row_text(headers, row), 0, index))
            continue
        text = clean_inline(part.text)
        if not text:
            continue
        numbered = _paragraph_numbering(part)
        label = numbering.label(*numbered) if numbered else ""
        level = _heading_level(part)
        if level:
            if label and not NUMBERED_HEADING.match(text):
                text = f"{label.rstrip('.')} {text}" if label[:1].isdigit() else text
            level = 1 if _is_title(part) else level + shift
            blocks.append(text_block("heading", text, level, index))
        elif not styled_headings and _is_bold_line(part, text):
            heading = f"{label.rstrip('.')} {text}" if label[:1].isdigit() else text
            blocks.append(text_block("heading", heading, numbered_level(heading), index))
        elif label and _MULTI_LEVEL_NUMBER.match(label):
            # "4.2.1" numbering on body text is a numbered clause, cited by that number.
            blocks.append(text_block("paragraph", f"{label.rstrip('.')} {text}", 0, index))
        elif numbered:
            depth = numbered[1] or _list_style_depth(part)
            blocks.append(text_block("item", text, depth, index))
        else:
            blocks.append(text_block("paragraph", text, 0, index))
    fields: Fields = {}
    properties = document.core_properties
    if (properties.title or "").strip():
        fields["title"] = properties.title.strip()
    if (properties.version or "").strip():
        fields["version"] = properties.version.strip()
    return fields, blocks
