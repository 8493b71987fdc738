"""A minimal PDF writer, for documents the benchmarks and tests need (no PDF library writes
one as small and as predictable): text pages in Helvetica, or image-only pages."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    """A line set in its own size and weight, `space_before` points lower than the usual line
    pitch puts it (a paragraph's first line), `indent` points right of the margin (a list
    item's wrapped text)."""

    text: str
    size: float = 11.0
    bold: bool = False
    space_before: float = 0.0
    indent: float = 0.0


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _styled_ops(lines: Sequence[str | Line]) -> list[str]:
    ops, y = ["BT"], 750.0
    for entry in lines:
        line = entry if isinstance(entry, Line) else Line(entry)
        font = "/F2" if line.bold else "/F1"
        y -= line.space_before
        ops.append(f"{font} {line.size:g} Tf 1 0 0 1 {56 + line.indent:g} {y:g} Tm")
        ops.append(f"({_escape(line.text)}) Tj")
        y -= 1.25 * line.size
    ops.append("ET")
    return ops


def make_pdf(
    pages: Sequence[Sequence[str | Line]],
    title: str = "",
    *,
    flate_content: bytes | None = None,
) -> bytes:
    """A valid PDF with one Helvetica text line per string, top to bottom on each page; a
    `Line` is set in its own size and weight (Helvetica-Bold), where it says.

    A page given as an empty list has no text at all, like a scanned page. `flate_content`
    replaces the first page's content with that zlib-compressed stream (a compression bomb).
    """
    objects: list[bytes] = []
    page_count = len(pages)
    # 1 catalog, 2 pages, 3 and 4 fonts, then per page: page object, content stream.
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(page_count))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {page_count} >>".encode())
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
    )
    for index, lines in enumerate(pages):
        content_id = 6 + 2 * index
        objects.append(
            (
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_id} 0 R >>"
            ).encode()
        )
        if lines and any(isinstance(line, Line) for line in lines):
            stream = "\n".join(_styled_ops(lines)).encode("cp1252")
        elif lines:
            ops = ["BT", "/F1 11 Tf", "14 TL", "56 750 Td"]
            for line in lines:
                ops.append(f"({_escape(str(line))}) Tj T*")
            ops.append("ET")
            stream = "\n".join(ops).encode("cp1252")
        else:
            stream = b"0.9 g 56 56 500 680 re f"  # a grey box: an image-only page
        flate = b""
        if flate_content is not None and index == 0:
            stream, flate = flate_content, b" /Filter /FlateDecode"
        objects.append(
            b"<< /Length %d%s >>\nstream\n" % (len(stream), flate) + stream + b"\nendstream"
        )
    info_id = len(objects) + 1
    objects.append(f"<< /Title ({_escape(title)}) >>".encode("latin-1"))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, info_id, xref)
    )
    return out.getvalue()
