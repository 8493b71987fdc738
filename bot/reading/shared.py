"""What the HTML, DOCX and PDF readers share: `ReadLimits` and the refusals they word, and
how a line of text becomes a `Block`.

Each reader takes the file's bytes and returns (front matter fields, blocks), like
`bot.reading.ingest.read_markdown`; it raises PolicyError with a message for the uploader when the
file cannot be read (corrupt, encrypted, scanned without text, wrong encoding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.models import Block

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
NUMBERED_HEADING = re.compile(r"^(?:section\s+|article\s+)?(\d+(?:\.\d+)*)\.?\s+(\S.*)$", re.I)


def text_block(kind: str, text: str, level: int = 0, line: int = 0, end_line: int = 0) -> Block:
    return Block(kind, " ".join(text.split()), level, line, end_line or line)


def numbered_level(text: str) -> int:
    """ "4" -> 2, "4.2" -> 3: level 1 is the document title, as in Markdown."""
    match = NUMBERED_HEADING.match(text)
    return 2 + match.group(1).count(".") if match else 2


def table_row_text(headers: list[str], row: list[str]) -> str:
    """A table row as one readable unit: "Channel: LinkedIn; Who may post: Marketing"."""
    if headers and len(headers) == len(row):
        return "; ".join(f"{h}: {c}" if h else c for h, c in zip(headers, row, strict=True) if c)
    return "; ".join(c for c in row if c)
