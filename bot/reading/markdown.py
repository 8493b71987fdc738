"""Markdown and plain text into structural blocks (headings, paragraphs, list items).

Markdown is read by markdown-it-py (CommonMark); plain text by the guesses below.
"""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.models import Block

_FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S
)
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+•]|\d{1,3}[.)]|\([a-z0-9]{1,3}\)|[a-z][.)])\s+(.*)$")
_TABLE_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)

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
    """Read Markdown (CommonMark with tables) into blocks; line numbers count from `first_line`.

    A block quote's paragraphs and lists are read without their `>`; a code block, fenced or
    indented, is one paragraph of its text, without the fence. Inside a paragraph, a line in a
    list notation CommonMark does not know ("(a) ...", "b) ...", "• ...", or "2. ..." right
    after text) starts a list item, and a line between pipes is a table row, as in policies
    pasted from a word processor.
    """
    # Comments become blank lines, so what follows keeps its line numbers.
    text = _HTML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    env: dict[str, Any] = {}
    reader = _TokenReader(env, first_line)
    tokens = _PARSER.parse(text, env)
    for index, token in enumerate(tokens):
        reader.read(token, tokens[index + 1] if index + 1 < len(tokens) else None)
    return [b for b in reader.blocks if b.text]


#: CommonMark with GFM tables. Raw HTML is read as text with its tags dropped, so a stray
#: "<details>" or an unclosed tag never hides the policy text after it.
_PARSER = MarkdownIt("commonmark", {"html": False}).enable("table")


class _TokenReader:
    """markdown-it's tokens, in document order, into Blocks with source line numbers."""

    def __init__(self, env: dict[str, Any], first_line: int) -> None:
        self.env = env  # the reference definitions, for links written [text][ref]
        self.first_line = first_line
        self.blocks: list[Block] = []
        self.list_depth = 0
        self.item_opened = False  # the previous token opened a list item
        self.row: list[str] | None = None
        self.row_line = 0

    def read(self, token: Token, following: Token | None) -> None:
        kind = token.type
        item_first, self.item_opened = self.item_opened, kind == "list_item_open"
        if kind in ("bullet_list_open", "ordered_list_open"):
            self.list_depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.list_depth -= 1
        elif kind == "heading_open" and following is not None and token.map:
            text = self.inline(following.content)
            line, end = token.map[0] + self.first_line, token.map[1] - 1 + self.first_line
            self.blocks.append(Block("heading", text, int(token.tag[1:]), line, end))
        elif kind == "paragraph_open" and following is not None and token.map:
            self.paragraph(following.content, token.map[0] + self.first_line, item_first)
        elif kind in ("fence", "code_block") and token.map:
            # The content starts below a fence's opening line, on an indented block's first.
            self.code(token.content, token.map[0] + self.first_line + (kind == "fence"))
        elif kind == "tr_open" and token.map:
            self.row, self.row_line = [], token.map[0] + self.first_line
        elif kind == "inline" and self.row is not None:
            self.row.append(self.inline(token.content))
        elif kind == "tr_close" and self.row is not None:
            self.blocks.append(self.table_row(self.row, self.row_line))
            self.row = None

    def paragraph(self, content: str, line: int, item_first: bool) -> None:
        """A paragraph's lines, one to one with the source's, as paragraph text or items."""
        units: list[tuple[str, int, list[tuple[int, str]]]] = []  # (kind, level, lines)
        for number, raw in enumerate(content.split("\n"), line):
            if number == line and item_first:
                units.append(("item", self.list_depth - 1, [(number, raw)]))
            elif _TABLE_ROW.match(raw):
                if not _TABLE_RULE.match(raw):
                    units.append(("row", 0, [(number, raw)]))
                else:
                    units.append(("rule", 0, []))  # what follows is a paragraph of its own
            elif (listed := _LIST_ITEM.match(raw)) and listed.group(2).strip():
                units.append(("item", self.list_depth, [(number, listed.group(2))]))
            elif units and units[-1][0] in ("paragraph", "item"):
                units[-1][2].append((number, raw))  # a continuation line
            else:
                units.append(("paragraph", 0, [(number, raw)]))
        for kind, level, lines in units:
            if kind == "row":
                number, raw = lines[0]
                cells = [self.inline(cell) for cell in raw.strip().strip("|").split("|")]
                self.blocks.append(self.table_row(cells, number))
            elif lines:
                text = self.inline("\n".join(raw for _, raw in lines))
                self.blocks.append(Block(kind, text, level, lines[0][0], lines[-1][0]))

    def code(self, content: str, line: int) -> None:
        """A code block is quoted as its text: one paragraph, lines joined, taken literally."""
        lines = [(n, raw.strip()) for n, raw in enumerate(content.split("\n"), line)]
        lines = [(n, raw) for n, raw in lines if raw]
        if lines:
            text = " ".join(raw for _, raw in lines)
            self.blocks.append(Block("paragraph", text, 0, lines[0][0], lines[-1][0]))

    @staticmethod
    def table_row(cells: list[str], line: int) -> Block:
        """A row as the Markdown reader always gave it: an item of its non-empty cells."""
        return Block("item", "; ".join(cell for cell in cells if cell), 0, line, line)

    def inline(self, source: str) -> str:
        """Inline Markdown as the words a reader sees: link and image text, code as written."""
        parts = []
        for token in _PARSER.parseInline(source, self.env)[0].children or []:
            parts.append(" " if token.type in ("softbreak", "hardbreak") else token.content)
        return " ".join(_HTML_TAG.sub("", "".join(parts)).split())


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
