"""Policy files (bytes plus a file name) into a ParsedPolicy, whatever the format."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from bot.models import Block, ParsedPolicy, PolicyError
from bot.reading.clauses import build_clauses
from bot.reading.docx import read_docx
from bot.reading.html import read_html
from bot.reading.markdown import parse_markdown, parse_plain_text, split_front_matter
from bot.reading.pdf import read_pdf
from bot.reading.shared import BLOCKS, ReadLimits, over_ceiling

#: Reads a file's bytes, within the limits, into (front matter fields, blocks).
Reader = Callable[[bytes, ReadLimits], tuple[dict[str, str | list[str]], list[Block]]]


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        # Lines end in \n alone, so line numbers match what editors and `sed -n` show.
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as error:
        raise PolicyError(
            f"The file is not UTF-8 text (byte {error.start} cannot be read). "
            "Save it as UTF-8 and upload it again."
        ) from None


def read_markdown(
    data: bytes, limits: ReadLimits | None = None
) -> tuple[dict[str, str | list[str]], list[Block]]:
    fields, body, consumed = split_front_matter(_decode(data))
    return fields, parse_markdown(body, first_line=consumed + 1)


def read_plain_text(
    data: bytes, limits: ReadLimits | None = None
) -> tuple[dict[str, str | list[str]], list[Block]]:
    fields, body, consumed = split_front_matter(_decode(data))
    blocks = parse_plain_text(body)
    if consumed:
        blocks = [
            Block(b.kind, b.text, b.level, b.line + consumed, b.end_line + consumed) for b in blocks
        ]
    return fields, blocks


#: File suffix -> reader. Other formats register here.
READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_plain_text,
    ".text": read_plain_text,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
    ".pdf": read_pdf,
}


def document_name(filename: str) -> str:
    """The document a file is a version of: its stem, lower-cased, in dashes."""
    stem = Path(filename).stem.lower()
    return re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "policy"


def _field(fields: dict[str, str | list[str]], *names: str) -> str:
    for name in names:
        value = fields.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _refuse_past(filename: str, count: int, limit: int, what: str) -> None:
    if count > limit:
        raise PolicyError(f"{filename} has {count:,} {what}; {over_ceiling(limit, what)}")


def read_policy(
    filename: str, data: bytes, name: str | None = None, limits: ReadLimits | None = None
) -> ParsedPolicy:
    """Read a policy file into clauses; raises PolicyError with a message for the uploader.

    `limits` bound what a compressed file (DOCX, PDF) may expand to; the ceilings on sections,
    blocks and clauses hold for every format."""
    suffix = Path(filename).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        supported = ", ".join(sorted(READERS))
        raise PolicyError(
            f"{filename}: unsupported file type {suffix or '(none)'}; use {supported}."
        )
    if not data.strip():
        raise PolicyError(f"{filename} is empty.")
    limits = limits or ReadLimits()
    fields, blocks = reader(data, limits)
    sections = sum(1 for block in blocks if block.kind == "heading")
    _refuse_past(filename, sections, limits.sections, "sections")
    _refuse_past(filename, len(blocks), limits.blocks, BLOCKS)
    title, clauses = build_clauses(blocks)
    _refuse_past(filename, len(clauses), limits.clauses, "clauses")
    if not clauses:
        raise PolicyError(f"{filename} has no policy text that could be read into clauses.")
    owners_field = fields.get("owners", [])
    owners = tuple(owners_field) if isinstance(owners_field, list) else (owners_field,)
    return ParsedPolicy(
        name=name or document_name(filename),
        title=_field(fields, "title") or title or Path(filename).stem,
        version_label=_field(fields, "version", "version_date", "date", "effective"),
        owners=tuple(o for o in owners if o),
        clauses=tuple(clauses),
    )


def read_file(path: Path) -> bytes:
    """A policy file's bytes, or a PolicyError that says why they cannot be had."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"No such file: {path}") from None
    except IsADirectoryError:
        raise PolicyError(f"{path} is a folder, not a policy file.") from None
    except OSError as error:
        raise PolicyError(f"Cannot read {path}: {error.strerror}") from None
