"""Inputs the atheris harness (bench/fuzz.py) found crashing the readers, kept small, and a
check that every harness target takes its own seeds.

Each input here once escaped `read_policy` as an exception other than PolicyError; now it
reads or is refused with a message. docs/reliability.md lists the runs that found them.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from bench import fuzz
from bot.models import PolicyError
from bot.reading.ingest import read_policy

#: A page whose content stream holds an object reference ("2 0 R"), which only objects may:
#: pypdf's content parser hit its own `assert pdf is not None` (AssertionError).
PDF_REFERENCE_IN_CONTENT = (
    b"%PDF-1.4\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type/Pages/Kids[3 0 R]/Count 1>> endobj\n"
    b"3 0 obj <</Type/Page/Parent 2 0 R"
    b"/Resources<</Font<</F1<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>>>>>"
    b"/Contents 4 0 R>> endobj\n"
    b"4 0 obj <</Length 20>> stream\nBT (a) Tj 2 0 R ET\nendstream endobj\n"
    b"trailer <</Root 1 0 R>>\nstartxref\n0\n%%EOF\n"
)


#: A cross-reference offset no file can have: pypdf's seek raised OverflowError.
PDF_HUGE_STARTXREF = b"%PDF-1.4\ntrailer <</Root 1 0 R>>\nstartxref\n99999999999999999999\n%%EOF\n"


def test_pdf_with_an_impossible_startxref_is_refused_clearly() -> None:
    with pytest.raises(PolicyError, match="looks damaged"):
        read_policy("policy.pdf", PDF_HUGE_STARTXREF)


def test_pdf_with_an_object_reference_in_its_content_is_refused_clearly() -> None:
    with pytest.raises(PolicyError, match="a page is damaged") as error:
        read_policy("policy.pdf", PDF_REFERENCE_IN_CONTENT)
    assert "mypy" not in str(error.value)


@pytest.mark.parametrize(
    "markup",
    [
        b"5\x00<![l>",  # the fuzzer's input: html.parser raised AssertionError
        b"<![CDATAx[ y ]]>",
        b"<![l",  # never closed: skipped to the next ">"
    ],
)
def test_html_with_declarations_the_parser_rejects_still_reads(markup: bytes) -> None:
    page = b"<h2>1 Posting</h2><p>Ask Legal first.</p>" + markup + b"<p>Never share secrets.</p>"
    text = " ".join(c.text for c in read_policy("policy.html", page).clauses)
    assert "Ask Legal first." in text and "Never share secrets." in text


@pytest.mark.parametrize("charset", [b"UU", b"base64", b"rot13"])
def test_html_declaring_a_codec_that_is_no_text_encoding_reads_as_utf8(charset: bytes) -> None:
    # The fuzzer's page declared charset="UU...: a codec, but bytes to bytes (LookupError).
    page = b"<meta charset=" + charset + b"><p>Never share customer data.</p>"
    (clause,) = read_policy("policy.html", page).clauses
    assert clause.text == "Never share customer data."


@pytest.mark.parametrize("charset", [b"undefined", b"punycode"])
def test_html_in_a_charset_that_cannot_decode_it_is_refused_clearly(charset: bytes) -> None:
    page = b"<meta charset=" + charset + b"><p>Never share customer data.</p>"
    with pytest.raises(PolicyError, match="cannot be read as"):
        read_policy("policy.html", page)


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def small_docx(styles: str = "", numbering: str = "", properties: str = "") -> bytes:
    """A Word package of one paragraph with these properties, styles and numbering."""
    types = "application/vnd.openxmlformats-officedocument.wordprocessingml"
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{types}.document.main+xml"/>'
        f'<Override PartName="/word/styles.xml" ContentType="{types}.styles+xml"/>'
        f'<Override PartName="/word/numbering.xml" ContentType="{types}.numbering+xml"/></Types>',
        "_rels/.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        f'relationships"><Relationship Id="rId1" Type="{_RELS}/officeDocument" '
        'Target="word/document.xml"/></Relationships>',
        "word/_rels/document.xml.rels": '<Relationships xmlns="http://schemas.openxmlformats.'
        f'org/package/2006/relationships"><Relationship Id="rId1" Type="{_RELS}/styles" '
        f'Target="styles.xml"/><Relationship Id="rId2" Type="{_RELS}/numbering" '
        'Target="numbering.xml"/></Relationships>',
        "word/document.xml": f"<w:document {_W}><w:body><w:p><w:pPr>{properties}</w:pPr>"
        "<w:r><w:t>Never share customer data.</w:t></w:r></w:p></w:body></w:document>",
        "word/styles.xml": f"<w:styles {_W}>{styles}</w:styles>",
        "word/numbering.xml": f"<w:numbering {_W}>{numbering}</w:numbering>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for name, text in parts.items():
            package.writestr(name, text)
    return out.getvalue()


@pytest.mark.parametrize(
    "styles",
    [
        # The fuzzer's input: "Normal" based on itself; reading never ended.
        '<w:style w:type="paragraph" w:styleId="Rule"><w:name w:val="Rule"/>'
        '<w:basedOn w:val="Rule"/></w:style>',
        '<w:style w:type="paragraph" w:styleId="Rule"><w:name w:val="Rule"/>'
        '<w:basedOn w:val="Base"/></w:style><w:style w:type="paragraph" w:styleId="Base">'
        '<w:name w:val="Base"/><w:basedOn w:val="Rule"/></w:style>',
    ],
)
def test_docx_with_styles_based_on_each_other_still_reads(styles: str) -> None:
    package = small_docx(styles, properties='<w:pStyle w:val="Rule"/>')
    (clause,) = read_policy("policy.docx", package).clauses
    assert clause.text == "Never share customer data."


def test_docx_roman_numbering_from_a_huge_start_reads_at_once() -> None:
    # Counting to 10**11 in Roman numerals ("m" a hundred million times) never ended.
    numbering = (
        '<w:abstractNum w:abstractNumId="7"><w:lvl w:ilvl="0"><w:start w:val="100000000000"/>'
        '<w:numFmt w:val="lowerRoman"/><w:lvlText w:val="%1."/></w:lvl></w:abstractNum>'
        '<w:num w:numId="7"><w:abstractNumId w:val="7"/></w:num>'
    )
    properties = '<w:numPr><w:ilvl w:val="0"/><w:numId w:val="7"/></w:numPr>'
    (clause,) = read_policy("policy.docx", small_docx("", numbering, properties)).clauses
    assert clause.text == "Never share customer data."


@pytest.mark.parametrize("target", sorted(fuzz.TARGETS))
def test_each_harness_target_takes_its_seeds(target: str) -> None:
    run, seeds, max_len = fuzz.TARGETS[target]
    inputs = seeds()
    assert inputs and all(0 < len(seed) <= max_len for seed in inputs)
    for seed in [*inputs, b"", b"\xff\xfe", inputs[0][: len(inputs[0]) // 2]]:
        run(seed)  # PolicyError and QuestionError are caught inside; anything else fails here


def test_policy_seeds_are_valid_documents() -> None:
    """The fuzzer mutates real structure only if the seeds read into clauses."""
    for target, suffix in [("markdown", "md"), ("html", "html"), ("docx", "docx"), ("pdf", "pdf")]:
        seeds = fuzz.TARGETS[target][1]()
        assert seeds, target  # no seed at all would pass the check below
        for seed in seeds:
            assert read_policy(f"seed.{suffix}", seed).clauses


def test_docx_mutator_changes_one_part_and_keeps_a_package() -> None:
    seed = fuzz.docx_seeds()[0]
    before = dict(fuzz._zip_members(seed))

    def flip(data: bytes, max_size: int) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if data else b"x"

    mutated = {fuzz.mutate_docx(seed, 10 * len(seed), n, flip) for n in range(20)}
    checked = 0
    for data in mutated:
        try:
            after = dict(fuzz._zip_members(data))
        except Exception:  # the occasional whole-file mutation
            continue
        assert after.keys() == before.keys()
        assert sum(after[name] != before[name] for name in before) == 1
        checked += 1
    assert checked  # not every mutation may be skipped as unreadable
