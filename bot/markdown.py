"""Markdown and plain text into structural blocks (headings, paragraphs, list items)."""

from __future__ import annotations

import re

from bot.models import Block

_FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S
)
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)\s*$")
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+•]|\d{1,3}[.)]|\([a-z0-9]{1,3}\)|[a-z][.)])\s+(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_THEMATIC_BREAK = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def clean_inline(text: str) -> str:
    """Drop inline Markdown (links, emphasis, code marks, tags) and fold white space."""
    text = _LINK.sub(r"\1", text)
    for _ in range(2):  # nested emphasis such as **_text_**
        text = _EMPHASIS.sub(r"\2", text)
    text = _HTML_TAG.sub("", text)
    text = text.replace("\\", "")
    return " ".join(text.split())


def split_front_matter(text: str) -> tuple[dict[str, str | list[str]], str, int]:
    """Return the front matter fields, the body, and how many lines the front matter took."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text, 0
    fields: dict[str, str | list[str]] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or key.startswith((" ", "\t", "-")):
            continue
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            fields[key.strip().lower()] = [
                v.strip().strip("\"'") for v in value[1:-1].split(",") if v.strip()
            ]
        else:
            fields[key.strip().lower()] = value.strip("\"'")
    consumed = match.group(0).count("\n")
    return fields, text[match.end() :], consumed


def parse_markdown(text: str, first_line: int = 1) -> list[Block]:
    """Read Markdown into blocks; line numbers count from `first_line`."""
    text = _HTML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    lines = text.split("\n")
    blocks: list[Block] = []
    paragraph: list[str] = []
    paragraph_start = 0
    item: list[str] | None = None
    item_level = 0
    item_start = 0
    in_fence = False

    def flush() -> None:
        nonlocal paragraph, item
        if paragraph:
            blocks.append(_block("paragraph", " ".join(paragraph), 0, paragraph_start, last))
            paragraph = []
        if item is not None:
            blocks.append(_block("item", " ".join(item), item_level, item_start, last))
            item = None

    last = first_line
    for offset, raw in enumerate(lines):
        number = first_line + offset
        if _FENCE.match(raw):
            in_fence = not in_fence
            continue
        if in_fence:
            if raw.strip():
                if not paragraph:
                    paragraph_start = number
                paragraph.append(raw.strip())
            last = number
            continue
        stripped = raw.strip()
        if not stripped:
            flush()
            continue
        heading = _ATX_HEADING.match(raw)
        if heading:
            flush()
            blocks.append(
                _block("heading", heading.group(2), len(heading.group(1)), number, number)
            )
            last = number
            continue
        underline = _SETEXT_UNDERLINE.match(raw)
        if underline and paragraph and item is None and len(paragraph) == 1:
            level = 1 if underline.group(1).startswith("=") else 2
            blocks.append(_block("heading", paragraph[0], level, paragraph_start, number))
            paragraph = []
            last = number
            continue
        if _THEMATIC_BREAK.match(raw):
            flush()
            continue
        if _TABLE_ROW.match(raw):
            flush()
            if not _TABLE_RULE.match(raw):
                cells = [c.strip() for c in raw.strip().strip("|").split("|")]
                row = "; ".join(c for c in cells if c)
                if row:
                    blocks.append(_block("item", row, 0, number, number))
            last = number
            continue
        listed = _LIST_ITEM.match(raw)
        if listed and listed.group(2).strip():
            flush()
            item = [listed.group(2).strip()]
            item_level = len(listed.group(1).expandtabs(4)) // 2
            item_start = number
            last = number
            continue
        if item is not None:
            item.append(stripped)  # a continuation line of the list item
        else:
            if not paragraph:
                paragraph_start = number
            paragraph.append(stripped)
        last = number
    flush()
    return [b for b in blocks if b.text]


_NUMBERED_HEADING = re.compile(r"^(?:section\s+|article\s+)?(\d+(?:\.\d+)*)\.?\s+(\S.*)$", re.I)


def _looks_like_heading(line: str, next_blank: bool) -> bool:
    """Plain text has no markup, so a heading is a short line that reads like a title."""
    text = line.strip()
    if not text or len(text) > 90 or text.endswith((".", ",", ";", ":", "?", "!")):
        return bool(text) and text.isupper() and len(text) <= 90 and text.endswith(":")
    if _LIST_ITEM.match(line) and not _NUMBERED_HEADING.match(text):
        return False
    words = text.split()
    if text.isupper() and any(c.isalpha() for c in text):
        return True
    numbered = _NUMBERED_HEADING.match(text)
    if numbered and len(words) <= 12:
        return True
    capitalised = sum(1 for w in words if w[:1].isupper())
    return next_blank and len(words) <= 10 and capitalised >= max(1, len(words) // 2)


def parse_plain_text(text: str) -> list[Block]:
    """Read plain text into blocks, guessing headings from short title-like lines."""
    lines = text.split("\n")
    has_blank_lines = any(not line.strip() for line in lines)
    blocks: list[Block] = []
    paragraph: list[str] = []
    start = 0
    last = 0

    def flush() -> None:
        nonlocal paragraph
        if paragraph:
            blocks.append(_block("paragraph", " ".join(paragraph), 0, start, last))
            paragraph = []

    for index, raw in enumerate(lines):
        number = index + 1
        stripped = raw.strip()
        if not stripped:
            flush()
            continue
        next_blank = index + 1 >= len(lines) or not lines[index + 1].strip()
        prev_blank = index == 0 or not lines[index - 1].strip()
        title_like = _looks_like_heading(raw, next_blank or not has_blank_lines)
        if title_like and (prev_blank or not has_blank_lines or not paragraph):
            flush()
            level = 1 if not blocks and not _NUMBERED_HEADING.match(stripped) else 2
            numbered = _NUMBERED_HEADING.match(stripped)
            if numbered:
                level = 1 + numbered.group(1).count(".") + 1
            blocks.append(_block("heading", stripped.rstrip(":"), level, number, number))
            last = number
            continue
        listed = _LIST_ITEM.match(raw)
        if listed or not has_blank_lines:
            # One unit per line: list items, or text written one sentence per line.
            flush()
            body = listed.group(2) if listed else stripped
            kind = "item" if listed else "paragraph"
            level = len(listed.group(1).expandtabs(4)) // 2 if listed else 0
            blocks.append(_block(kind, body, level, number, number))
            last = number
            continue
        if not paragraph:
            start = number
        paragraph.append(stripped)
        last = number
    flush()
    return [b for b in blocks if b.text]


def _block(kind: str, text: str, level: int, line: int, end_line: int) -> Block:
    return Block(kind=kind, text=clean_inline(text), level=level, line=line, end_line=end_line)
