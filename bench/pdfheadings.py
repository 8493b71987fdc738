"""`python -m bench pdfheadings`: how many of a Word document's section titles survive when it
is exported to PDF and read back.

Each evaluation policy (Markdown, read from ../shared, never copied into the project) is
written as a DOCX with Word's own styles (Title, Heading N, List Bullet N), the way an
organization's policy document is; LibreOffice (`soffice --headless`) exports that DOCX to PDF;
both files go through `read_policy`. A title survives when the PDF reads a heading with the
same text. Without `soffice` on the PATH the section says so and the run measures nothing.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.sections import write_between
from bench.sets import SHARED_POLICIES
from bot.models import Block
from bot.reading.docx import read_docx
from bot.reading.ingest import read_markdown, read_policy
from bot.reading.pdf import read_pdf

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- pdfheadings:start -->", "<!-- pdfheadings:end -->"

#: The held-out policies the issue names first, then the tuning ones.
POLICIES = [
    "stonybrook-social-media-guidelines",
    "ucd-social-media-policy-colleges-schools-units",
    "northcoastchurch-social-media-acceptable-use",
    "gitlab-team-member-social-media-policy",
    "osc-hatch-act-faq",
]


@dataclass(frozen=True)
class FileResult:
    name: str
    docx_titles: int
    surviving: int
    pdf_titles: int
    docx_clauses: int
    pdf_clauses: int
    docx_items_with_lead_in: int
    pdf_items_with_lead_in: int

    @property
    def share(self) -> float:
        return self.surviving / self.docx_titles if self.docx_titles else 1.0


def policy_docx(blocks: list[Block]) -> bytes:
    """The blocks as a Word document: "#" the Title, "##" Heading 1, items List Bullet N."""
    import docx

    document = docx.Document()
    for block in blocks:
        if block.kind == "heading":
            style = "Title" if block.level == 1 else f"Heading {min(block.level - 1, 9)}"
            document.add_paragraph(block.text, style=style)
        elif block.kind == "item":
            depth = min(block.level, 2)
            document.add_paragraph(
                block.text, style="List Bullet" + (f" {depth + 1}" * bool(depth))
            )
        else:
            document.add_paragraph(block.text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def to_pdf(docx_data: bytes, program: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "policy.docx"
        source.write_bytes(docx_data)
        subprocess.run(
            [
                program,
                "--headless",
                f"-env:UserInstallation=file://{folder}/profile",
                "--convert-to",
                "pdf",
                "--outdir",
                folder,
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        return (Path(folder) / "policy.pdf").read_bytes()


def _title(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def _items_with_lead_in(filename: str, data: bytes) -> int:
    """Clauses that quote a lead-in ending in a colon before an item's text."""
    return sum(1 for c in read_policy(filename, data).clauses if re.search(r":\s", c.text[:300]))


def measure(name: str, markdown: bytes, program: str) -> FileResult:
    _, blocks = read_markdown(markdown)
    docx_data = policy_docx(blocks)
    pdf_data = to_pdf(docx_data, program)
    docx_titles = [_title(b.text) for b in read_docx(docx_data)[1] if b.kind == "heading"]
    pdf_titles = [_title(b.text) for b in read_pdf(pdf_data)[1] if b.kind == "heading"]
    left = list(pdf_titles)
    surviving = 0
    for title in docx_titles:
        if title in left:
            left.remove(title)
            surviving += 1
    return FileResult(
        name,
        len(docx_titles),
        surviving,
        len(pdf_titles),
        len(read_policy("p.docx", docx_data).clauses),
        len(read_policy("p.pdf", pdf_data).clauses),
        _items_with_lead_in("p.docx", docx_data),
        _items_with_lead_in("p.pdf", pdf_data),
    )


def run_all() -> list[FileResult] | None:
    program = soffice()
    if program is None:
        return None
    return [
        measure(name, (SHARED_POLICIES / f"{name}.md").read_bytes(), program) for name in POLICIES
    ]


def markdown(results: list[FileResult] | None) -> str:
    lines = [
        "## PDF headings",
        "",
        "Reproduce: `python -m bench pdfheadings` (rewrites only this section with `--out`; needs",
        "LibreOffice: `apt-get install libreoffice-writer-nogui`). Each evaluation policy is",
        "written as a Word document with Word's styles (Title, Heading N, List Bullet N), exported",
        "to PDF by LibreOffice, and both files are read. A section title survives when the PDF",
        "reads a heading with the same words. `lead-in clauses` counts clauses that quote a",
        "sentence ending in a colon before the item it introduces.",
        "",
        "Before the reader went by the PDF's typesetting (headings only when numbered or in",
        "capitals) 10 of 169 titles survived (6%): stonybrook 0/12, ucd 8/13, northcoastchurch",
        "1/4, gitlab 1/21, osc 0/119. northcoastchurch opens with two Title paragraphs in a row",
        '(its name, then "Definitions"), which the PDF reads as one title on two lines.',
        "",
    ]
    if results is None:
        lines.append("Not measured: `soffice` is not installed on this machine.")
        return "\n".join(lines)
    lines += [
        "| policy | DOCX titles | survive in PDF | share | PDF headings | DOCX clauses "
        "| PDF clauses | lead-in clauses DOCX / PDF |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.docx_titles} | {r.surviving} | {r.share:.0%} | {r.pdf_titles} "
            f"| {r.docx_clauses} | {r.pdf_clauses} "
            f"| {r.docx_items_with_lead_in} / {r.pdf_items_with_lead_in} |"
        )
    total = sum(r.docx_titles for r in results)
    kept = sum(r.surviving for r in results)
    lines.append(f"| **all** | {total} | {kept} | {kept / total:.0%} | | | | |")
    return "\n".join(lines)


def block(section: str) -> str:
    return f"{START}\n{section}\n{END}"


def write_section(section: str, path: Path = BENCHMARKS) -> None:
    """Put the section between its markers in the page, or at its end the first time."""
    write_between(path, START, END, block(section))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench pdfheadings")
    parser.add_argument("--out", type=Path, help="rewrite this section of that page")
    args = parser.parse_args(argv)
    results = run_all()
    if results is None:
        print("soffice not found: install libreoffice-writer-nogui to measure", file=sys.stderr)
    section = markdown(results)
    print(section, flush=True)
    if args.out:
        write_section(section, args.out)


if __name__ == "__main__":
    main()
