"""Hostile policy files, made on the spot: compression bombs and huge legal documents.

Used by `python -m bench uploads` (full size, as in the security report) and by the tests (the
same shapes, just past the limits, small on disk). Word packages are written part by part with
`zipfile`'s streaming writer, so a file that unpacks to a gigabyte never exists in memory.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator

from bench.pdf import make_pdf

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CONTENT_TYPES = (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_PACKAGE_RELS = (
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_RELS}/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)
_CHUNK = 2**20


def _docx(body: Iterator[bytes]) -> bytes:
    """A minimal Word package whose document part is `body`, streamed in."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _PACKAGE_RELS)
        with package.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(f"<w:document {_W}><w:body>".encode())
            for chunk in body:
                part.write(chunk)
            part.write(b"</w:body></w:document>")
    return out.getvalue()


def _repeated(unit: bytes, size: int) -> Iterator[bytes]:
    block = unit * max(1, _CHUNK // len(unit))
    written = 0
    while written < size:
        yield block
        written += len(block)


def docx_paragraph_bomb(unpacked_bytes: int) -> bytes:
    """A Word file of short paragraphs that unpacks to about `unpacked_bytes`."""
    paragraph = b"<w:p><w:r><w:t>Do not post customer data.</w:t></w:r></w:p>"
    return _docx(_repeated(paragraph, unpacked_bytes))


def docx_text_node_bomb(unpacked_bytes: int) -> bytes:
    """One paragraph whose single text node is about `unpacked_bytes` long."""

    def body() -> Iterator[bytes]:
        yield b"<w:p><w:r><w:t>"
        yield from _repeated(b"a" * 1024, unpacked_bytes)
        yield b"</w:t></w:r></w:p>"

    return _docx(body())


def docx_nesting_bomb(depth: int) -> bytes:
    """Content controls nested `depth` deep around one paragraph: small, but deep."""

    def body() -> Iterator[bytes]:
        yield b"<w:sdt><w:sdtContent>" * depth
        yield b"<w:p><w:r><w:t>Do not post customer data.</w:t></w:r></w:p>"
        yield b"</w:sdtContent></w:sdt>" * depth

    return _docx(body())


def docx_lying_directory(unpacked_bytes: int) -> bytes:
    """A paragraph bomb whose ZIP directory declares the document part 1 KB long: a reader
    that trusts the declared size would let it through."""
    data = bytearray(docx_paragraph_bomb(unpacked_bytes))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as package:
        info = package.getinfo("word/document.xml")
    patched = bytes(data)
    for width in (4, 8):  # the directory's own field and, when written, the zip64 extra field
        patched = patched.replace(
            info.file_size.to_bytes(width, "little"), (1024).to_bytes(width, "little")
        )
    return patched


def markdown_sections(sections: int) -> bytes:
    """A Markdown policy of `sections` numbered sections, one clause each (9.5 MB at 86,000,
    the size of the one in the security report)."""
    lines = ["# Social media policy\n"]
    for number in range(1, sections + 1):
        lines.append(
            f"\n## {number}. Section {number}\n\nEmployees must not share confidential "
            f"information about project {number} anywhere online.\n"
        )
    return "".join(lines).encode()


def html_policy(paragraphs: int, style_bytes: int = 0) -> bytes:
    """A big but ordinary HTML policy: sections of ten paragraphs each. `style_bytes` of inline
    style per paragraph make it look like Word's HTML export, mostly markup."""
    style = f' style="{("mso-ansi-language:EN-GB;" * (style_bytes // 22 + 1))[:style_bytes]}"'
    style = style if style_bytes else ""
    parts = ["<html><head><title>Social media policy</title></head><body><h1>Policy</h1>"]
    for number in range(paragraphs):
        if number % 10 == 0:
            parts.append(f"<h2>{number // 10 + 1}. Section {number // 10 + 1}</h2>")
        parts.append(
            f"<p{style}>Employees must not share confidential information about project "
            f"{number} on social media, in forums or in messages to the press without "
            "approval.</p>"
        )
    parts.append("</body></html>")
    return "".join(parts).encode()


def pdf_stream_bomb(unpacked_bytes: int) -> bytes:
    """A one-page PDF whose content stream inflates to about `unpacked_bytes` of text
    operators."""
    operator = b"BT /F1 12 Tf 72 720 Td (Do not post customer data.) Tj ET\n"
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(chunk) for chunk in _repeated(operator, unpacked_bytes)]
    stream = b"".join(chunks) + compressor.flush()
    return make_pdf([["Social media policy"]], flate_content=stream)
