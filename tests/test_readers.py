"""HTML, DOCX and PDF files read into clauses that keep their section numbers and titles."""

from __future__ import annotations

import io

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from bench.pdf import Line
from bot.models import PolicyError
from bot.reading.docx import _format_number, read_docx
from bot.reading.html import read_html
from bot.reading.ingest import read_policy
from bot.reading.pdf import read_pdf
from tests.documents import add_heading_numbering, docx_bytes, make_pdf, number_paragraph

SCOPE = "This policy applies to every employee who posts about Acme on any social network."
CUSTOMERS = "Employees must not share non-public information about customers, prices or contracts."
ROADMAPS = "Employees must never post unreleased product plans or launch dates anywhere online."


def references(filename: str, data: bytes) -> list[tuple[str, str]]:
    return [(c.reference, c.text) for c in read_policy(filename, data).clauses]


# -- HTML --------------------------------------------------------------------------------------
def test_html_headings_lists_and_tables_become_blocks() -> None:
    page = f"""<!doctype html><html><head><title>Acme Social Media Policy</title>
    <style>p {{ color: red }}</style><script>var x = "<p>not policy</p>";</script></head>
    <body><nav>Home | Jobs</nav>
    <h1>Acme Social Media Policy</h1>
    <h2>1. Scope</h2><p>{SCOPE}</p>
    <h2>2. Confidential information</h2>
    <h3>2.1 Customer data</h3><p>Never post the following:</p>
    <ul><li>customer names, shipment details or contract prices from our systems</li>
        <li><p>internal dashboards</p><ul><li>including screenshots of them</li></ul></li></ul>
    <table><tr><th>Channel</th><th>Who may post</th></tr>
           <tr><td>LinkedIn</td><td>Marketing<br>and PR</td></tr></table>
    </body></html>""".encode()
    fields, blocks = read_html(page)
    assert fields == {"title": "Acme Social Media Policy"}
    kinds = [(b.kind, b.level, b.text) for b in blocks]
    assert ("heading", 3, "2.1 Customer data") in kinds
    assert ("item", 1, "including screenshots of them") in kinds
    assert ("row", 0, "Channel: LinkedIn; Who may post: Marketing and PR") in kinds
    assert not any("not policy" in b.text or "Jobs" in b.text for b in blocks)
    clauses = read_policy("acme.html", page).clauses
    assert clauses[0].reference == "1 Scope" and clauses[0].text == SCOPE
    listed = [c for c in clauses if "customer names" in c.text]
    assert listed and listed[0].reference == "2.1 Customer data"
    assert listed[0].text.startswith("Never post the following:")
    table = [c for c in clauses if "LinkedIn" in c.text]
    assert table and "Never post" not in table[0].text  # a table row is not a list item


def test_html_declared_charset_is_honoured_and_bad_utf8_refused() -> None:
    latin = f'<meta charset="iso-8859-1"><h2>1. Café rules</h2><p>{SCOPE}</p>'.encode("latin-1")
    assert references("p.html", latin)[0][0] == "1 Café rules"
    with pytest.raises(PolicyError, match="not valid utf-8"):
        read_html(b"<p>caf\xe9 \xff</p>")


# -- DOCX --------------------------------------------------------------------------------------
def test_docx_word_heading_styles_with_numbers_in_the_text() -> None:
    document = docx.Document()
    document.add_heading("Acme Social Media Policy", 0)
    document.add_heading("1. Scope", 1)
    document.add_paragraph(SCOPE)
    document.add_heading("2. Confidential information", 1)
    document.add_heading("2.1 Customer data", 2)
    document.add_paragraph(CUSTOMERS)
    parsed = read_policy("acme.docx", docx_bytes(document))
    assert parsed.title == "Acme Social Media Policy"
    assert [(c.section, c.section_title) for c in parsed.clauses] == [
        ("1", "Scope"),
        ("2.1", "Customer data"),
    ]
    assert parsed.clauses[1].heading_path == ("2. Confidential information", "2.1 Customer data")


def test_docx_automatic_heading_numbering_is_counted() -> None:
    """Word shows "2.2" before a numbered heading though its text is only "Roadmaps"."""
    document = docx.Document()
    num_id = add_heading_numbering(document)
    document.add_paragraph("Acme Policy", style="Title")
    number_paragraph(document.add_heading("Scope", 1), num_id, 0)
    document.add_paragraph(SCOPE)
    number_paragraph(document.add_heading("Confidential information", 1), num_id, 0)
    number_paragraph(document.add_heading("Customer data", 2), num_id, 1)
    document.add_paragraph(CUSTOMERS)
    number_paragraph(document.add_heading("Roadmaps", 2), num_id, 1)
    document.add_paragraph(ROADMAPS)
    assert references("acme.docx", docx_bytes(document)) == [
        ("1 Scope", SCOPE),
        ("2.1 Customer data", CUSTOMERS),
        ("2.2 Roadmaps", ROADMAPS),
    ]


def test_docx_lists_tables_and_numbered_body_clauses() -> None:
    document = docx.Document()
    document.add_heading("3. Posting", 1)
    document.add_paragraph("Never post the following:")
    document.add_paragraph(
        "customer names, shipment details or contract prices from our systems",
        style="List Bullet",
    )
    document.add_paragraph(
        "unreleased product plans, internal roadmaps, launch dates and code names",
        style="List Number",
    )
    num_id = add_heading_numbering(document)
    clause = document.add_paragraph(
        "Managers must approve any post that names a customer before it is published."
    )
    number_paragraph(clause, num_id, 1)  # shown by Word as "1.1"
    table = document.add_table(rows=3, cols=2)
    for row, (channel, who) in enumerate(
        [("Channel", "Who may post"), ("LinkedIn", "Marketing"), ("X (Twitter)", "PR only")]
    ):
        table.cell(row, 0).text, table.cell(row, 1).text = channel, who
    _, blocks = read_docx(docx_bytes(document))
    items = [b.text for b in blocks if b.kind == "item"]
    assert items[0].startswith("customer names") and items[1].startswith("unreleased")
    rows = [b.text for b in blocks if b.kind == "row"]
    assert rows == [
        "Channel: LinkedIn; Who may post: Marketing",
        "Channel: X (Twitter); Who may post: PR only",
    ]
    clauses = read_policy("p.docx", docx_bytes(document)).clauses
    numbered = [c for c in clauses if c.text.startswith("1.1 Managers")]
    assert numbered and numbered[0].section == "1.1"
    on_linkedin = [c for c in clauses if "LinkedIn" in c.text]
    assert on_linkedin and all(c.section == "3" for c in on_linkedin)


def test_docx_without_heading_styles_uses_bold_lines() -> None:
    document = docx.Document()
    document.add_paragraph().add_run("4.2 Customer data").bold = True
    document.add_paragraph(CUSTOMERS)
    assert references("p.docx", docx_bytes(document)) == [("4.2 Customer data", CUSTOMERS)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 not really a zip", "damaged"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "password-protected"),
    ],
)
def test_docx_corrupt_or_encrypted_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        read_docx(data)


def test_docx_truncated_is_refused() -> None:
    document = docx.Document()
    document.add_paragraph(SCOPE)
    data = docx_bytes(document)
    with pytest.raises(PolicyError, match="damaged"):
        read_docx(data[: len(data) // 2])


# -- PDF ---------------------------------------------------------------------------------------
PDF_PAGES = [
    [
        "Acme Social Media Policy",
        "Acme Inc. - Internal",
        "1. Scope",
        "This policy applies to every employee who posts about Acme on any social",
        "network, personal or official, and to contractors working for us.",
        "2. Confidential information",
        "2.1 Customer data",
        "Employees must not share non-public information about customers, ship-",
        "ments, prices or contracts.",
        "Page 1 of 2",
    ],
    [
        "Acme Inc. - Internal",
        "2.2 Roadmaps",
        "Never post the following:",
        "• unreleased product plans, internal roadmaps or launch dates anywhere online",
        "• screenshots of internal dashboards or tools",
        "Page 2 of 2",
    ],
]


def test_pdf_text_in_reading_order_without_headers_footers_or_page_numbers() -> None:
    parsed = read_policy("acme.pdf", make_pdf(PDF_PAGES, title="Acme Social Media Policy"))
    assert parsed.title == "Acme Social Media Policy"
    got = [(c.reference, c.text) for c in parsed.clauses]
    assert got[0] == (
        "1 Scope",
        "This policy applies to every employee who posts about Acme on any social network, "
        "personal or official, and to contractors working for us.",
    )
    assert got[1] == (
        "2.1 Customer data",
        "Employees must not share non-public information about customers, shipments, "
        "prices or contracts.",
    )
    assert got[2][0] == "2.2 Roadmaps" and got[2][1].startswith("Never post the following:")
    everything = " ".join(text for _, text in got)
    assert "Internal" not in everything and "Page" not in everything


def test_pdf_file_name_metadata_title_is_ignored() -> None:
    data = make_pdf(PDF_PAGES, title="Microsoft Word - smp-final.docx")
    assert read_policy("acme.pdf", data).title == "Acme Social Media Policy"


def encrypted_pdf(user_password: str) -> bytes:
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(make_pdf(PDF_PAGES))))
    writer.encrypt(user_password, owner_password="owner-secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_with_owner_password_only_is_read() -> None:
    assert references("acme.pdf", encrypted_pdf(""))[0][0] == "1 Scope"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.4\nthis is not really a pdf\n", "damaged"),
        (make_pdf(PDF_PAGES)[:600], "damaged"),
        (b"just some text", "not a PDF"),
        (make_pdf([[], []]), "no text layer"),
        (encrypted_pdf("open-sesame"), "password-protected"),
    ],
    ids=["garbage", "truncated", "not-pdf", "scanned", "password"],
)
def test_pdf_bad_input_is_refused_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        read_pdf(data)


@pytest.mark.parametrize(
    ("number", "label"),
    [(1, "a"), (26, "z"), (27, "aa"), (28, "bb"), (52, "zz"), (53, "aaa"), (78, "zzz"), (79, "79")],
)
def test_docx_letter_numbering_counts_as_word_does(number: int, label: str) -> None:
    assert _format_number(number, "lowerLetter") == label
    assert _format_number(number, "upperLetter") == label.upper()


# -- PDF typesetting: sizes, weight and spacing ------------------------------------------------
BODY_GAP = 8.0  # the space Word leaves after a paragraph
STYLED_PAGES = [
    [
        Line("Acme Inc. - Internal", size=9),
        Line("Acme Social Media Policy", size=20, bold=True, space_before=BODY_GAP),
        Line("Scope", size=14, bold=True, space_before=BODY_GAP),
        Line("This policy applies to every employee who posts about Acme on any social network"),
        Line("and to contractors."),
        Line("Customer data", bold=True, space_before=BODY_GAP),
        Line("Employees must not share non-public information about customers, shipments,"),
        Line("prices or contracts."),
        Line("Page 1 of 2", size=9, space_before=BODY_GAP),
    ],
    [
        Line("Acme Inc. - Internal", size=9),
        Line("Devices", size=14, bold=True, space_before=BODY_GAP),
        Line("Before connecting to company systems, all users must ensure that:"),
        Line("• their laptop runs the current operating system release and has disk encryption"),
        Line("turned on before it is used", indent=18),
        Line("• the screen locks after five minutes away from the keyboard"),
        Line(
            "Lost devices are reported to the service desk within one working day of the loss.",
            space_before=BODY_GAP,
        ),
        Line("Page 2 of 2", size=9, space_before=BODY_GAP),
    ],
]


def test_pdf_larger_or_bold_lines_are_headings_ranked_by_size() -> None:
    _, blocks = read_pdf(make_pdf(STYLED_PAGES))
    headings = [(b.level, b.text) for b in blocks if b.kind == "heading"]
    # 20 pt the title, 14 pt bold the sections, bold at body size the lowest level.
    assert headings == [
        (1, "Acme Social Media Policy"),
        (2, "Scope"),
        (3, "Customer data"),
        (2, "Devices"),
    ]


def test_pdf_body_text_is_not_glued_to_a_heading_and_ends_at_paragraph_spacing() -> None:
    parsed = read_policy("acme.pdf", make_pdf(STYLED_PAGES))
    assert parsed.title == "Acme Social Media Policy"
    by_title = {c.section_title: c.text for c in parsed.clauses}
    # The unnumbered "Scope" is a section of its own, not the first words of its text.
    assert by_title["Scope"] == (
        "This policy applies to every employee who posts about Acme on any social network "
        "and to contractors."
    )
    assert by_title["Customer data"].startswith("Employees must not share")
    assert parsed.clauses[-1].text.startswith("Lost devices")
    assert "Internal" not in " ".join(c.text for c in parsed.clauses)
    assert "Page" not in " ".join(c.text for c in parsed.clauses)


def test_pdf_bullet_wrapped_onto_two_lines_stays_one_item_with_its_lead_in() -> None:
    _, blocks = read_pdf(make_pdf(STYLED_PAGES))
    items = [b.text for b in blocks if b.kind == "item"]
    assert items == [
        "their laptop runs the current operating system release and has disk encryption "
        "turned on before it is used",
        "the screen locks after five minutes away from the keyboard",
    ]
    clauses = read_policy("acme.pdf", make_pdf(STYLED_PAGES)).clauses
    lead_in = "Before connecting to company systems, all users must ensure that:"
    quoted = [c.text for c in clauses if "laptop" in c.text or "screen locks" in c.text]
    assert quoted and all(text.startswith(lead_in) for text in quoted)
