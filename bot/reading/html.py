"""HTML policy files into the same `Block`s as Markdown: headings, paragraphs, list items and
table rows in document order, in the charset the page declares."""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from bot.models import Block, PolicyError
from bot.reading.shared import Fields, ReadLimits, table_row_text, text_block

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
            self.blocks.append(text_block(kind, text, level, line, self.getpos()[0]))
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
        self.blocks.append(text_block("row", table_row_text(headers, row), 0, line, line))

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
