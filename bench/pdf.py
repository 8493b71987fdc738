"""A minimal PDF writer, for documents the benchmarks and tests need (no PDF library writes
one as small and as predictable): text pages in Helvetica, or image-only pages."""

from __future__ import annotations

import io
from collections.abc import Sequence


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(
    pages: Sequence[Sequence[str]], title: str = "", *, flate_content: bytes | None = None
) -> bytes:
    """A valid PDF with one Helvetica text line per string, top to bottom on each page.

    A page given as an empty list has no text at all, like a scanned page. `flate_content`
    replaces the first page's content with that zlib-compressed stream (a compression bomb).
    """
    objects: list[bytes] = []
    page_count = len(pages)
    # 1 catalog, 2 pages, 3 font, then per page: page object, content stream.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(page_count))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {page_count} >>".encode())
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    for index, lines in enumerate(pages):
        content_id = 5 + 2 * index
        objects.append(
            (
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
            ).encode()
        )
        if lines:
            ops = ["BT", "/F1 11 Tf", "14 TL", "56 750 Td"]
            for line in lines:
                ops.append(f"({_escape(line)}) Tj T*")
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
