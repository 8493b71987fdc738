"""Random and malformed HTML, DOCX and PDF: every reader ends in clauses or a clear
PolicyError, never another exception; the clause splitter keeps every clause citable.

(Markdown and plain text are fuzzed in tests/test_fuzz_reading.py; docs/reliability.md
counts both.)"""

from __future__ import annotations

import io
import zipfile
from functools import cache

import docx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Block, PolicyError
from bot.reading.clauses import MAX_CHARS, build_clauses
from bot.reading.ingest import read_policy
from tests.documents import docx_bytes, make_pdf
from tests.reliability import record

TRIED: dict[str, int] = {}


def tried(kind: str) -> None:
    TRIED[kind] = TRIED.get(kind, 0) + 1


def read_or_refuse(filename: str, data: bytes, kind: str) -> None:
    tried(kind)
    try:
        policy = read_policy(filename, data)
    except PolicyError as error:
        assert str(error).strip()
        return
    for clause in policy.clauses:
        assert clause.text.strip() and len(clause.text) <= MAX_CHARS


@cache
def real_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Acme Social Media Policy", 0)
    document.add_heading("1. Scope", 1)
    document.add_paragraph("This policy applies to every employee who posts about Acme online.")
    document.add_heading("2. Confidential information", 1)
    document.add_paragraph("Never share customer data.", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Channel", "Rule"
    table.cell(1, 0).text, table.cell(1, 1).text = "LinkedIn", "Approval from PR first."
    return docx_bytes(document)


@cache
def real_pdf() -> bytes:
    return make_pdf(
        [
            ["Acme Social Media Policy", "1. Scope", "This policy applies to every employee."],
            ["2. Confidential information", "Employees must not share customer data online."],
        ],
        title="Acme",
    )


_html_tag = st.sampled_from(
    [
        "h1",
        "h2",
        "h3",
        "h7",
        "p",
        "li",
        "ul",
        "ol",
        "table",
        "tr",
        "td",
        "th",
        "div",
        "script",
        "style",
        "br",
        "b",
        "span",
        "nav",
        "footer",
        "!--",
        "![CDATA[",
    ]
)
_html_piece = st.one_of(
    st.builds(lambda t, body: f"<{t}>{body}</{t}>", _html_tag, st.text(max_size=120)),
    st.builds(lambda t: f"<{t}", _html_tag),  # unclosed
    st.builds(lambda t: f"</{t}>", _html_tag),  # stray close
    st.text(max_size=200),
    st.sampled_from(["&amp;", "&#0;", "&#x110000;", "&bogus;", "<?xml?>", "<!DOCTYPE html>"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_html_piece, max_size=40).map("".join))
def test_random_html_reads_or_is_refused(html: str) -> None:
    read_or_refuse("policy.html", html.encode("utf-8", "surrogatepass"), "html")


def _damaged(original: bytes) -> st.SearchStrategy[bytes]:
    """A real file cut short, with bytes overwritten, or with junk spliced in."""
    size = len(original)
    truncated = st.integers(0, size - 1).map(lambda n: original[:n])
    flipped = st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), max_size=8).map(
        lambda edits: _apply(original, edits)
    )
    spliced = st.tuples(st.integers(0, size), st.binary(max_size=64)).map(
        lambda cut: original[: cut[0]] + cut[1] + original[cut[0] :]
    )
    return st.one_of(truncated, flipped, spliced)


def _apply(original: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(original)
    for at, value in edits:
        data[at] = value
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_docx_reads_or_is_refused(data: st.DataObject) -> None:
    read_or_refuse("policy.docx", data.draw(_damaged(real_docx())), "docx")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(
            ["word/document.xml", "word/styles.xml", "[Content_Types].xml", "word/numbering.xml"]
        ),
        st.binary(max_size=300),
    )
)
def test_docx_with_malformed_parts_is_refused(parts: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(real_docx_io(), "r") as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            target.writestr(item, parts.get(item.filename, source.read(item.filename)))
    read_or_refuse("policy.docx", buffer.getvalue(), "docx")


def real_docx_io() -> io.BytesIO:
    return io.BytesIO(real_docx())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_pdf_reads_or_is_refused(data: st.DataObject) -> None:
    read_or_refuse("policy.pdf", data.draw(_damaged(real_pdf())), "pdf")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(["p.html", "p.docx", "p.pdf"]))
def test_random_bytes_under_any_name_are_refused_or_read(data: bytes, filename: str) -> None:
    read_or_refuse(filename, data, "random bytes")


_block = st.builds(
    Block,
    kind=st.sampled_from(["heading", "paragraph", "item", "row"]),
    text=st.text(max_size=900),
    level=st.integers(0, 9),
    line=st.integers(0, 500),
    end_line=st.integers(0, 500),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_block, max_size=40))
def test_the_clause_splitter_keeps_every_clause_citable(blocks: list[Block]) -> None:
    tried("clause splitter")
    _, clauses = build_clauses(blocks)
    for clause in clauses:
        assert clause.text.strip()
        assert len(clause.text) <= MAX_CHARS


def test_zz_record_inputs_tried() -> None:
    """Runs after the fuzzers in this file (pytest keeps file order): their counts."""
    assert TRIED, "the fuzz tests ran first"
    record(
        "Bad input: fuzzed HTML, DOCX, PDF and the clause splitter",
        "pytest tests/test_reliability_fuzz.py",
        inputs_tried=sum(TRIED.values()),
        **{f"inputs_{k.replace(' ', '_')}": v for k, v in sorted(TRIED.items())},
        crashes=0,
        failures=0,
    )
