"""Nested lists: each item is quoted with its chain of lead-ins (the sentence introducing the
list, then the parent item that introduces its sub-list), and nothing after a list's last
item or sub-item is glued to it."""

from __future__ import annotations

from collections.abc import Sequence

import docx

from bot.models import Clause
from bot.reading.clauses import LEAD_IN_CHARS, MAX_CHARS, build_clauses, lead_in_prefix
from bot.reading.docx import read_docx
from bot.reading.ingest import read_policy
from bot.reading.markdown import parse_markdown
from tests.documents import docx_bytes

LEAD_IN = "Before connecting to company systems, all users must ensure that:"
UPDATES = "their device runs a supported operating system with the latest security updates"
PASSCODE = "the device is protected by a passcode, and in particular:"
DIGITS = "the passcode has at least six digits and is never shared with anyone else"
LOCKS = "the screen locks itself after five minutes without use, on every device they own"
MEDIA = "company data is never stored on removable media or personal cloud storage accounts"
AFTER = "Lost devices must be reported to the IT service desk within one working day."

NESTED_MARKDOWN = f"""## 2. Devices

{LEAD_IN}

- {UPDATES}
- {PASSCODE}
  - {DIGITS}
  - {LOCKS}
- {MEDIA}

{AFTER}
"""

NESTED_HTML = f"""<html><body><h2>2. Devices</h2><p>{LEAD_IN}</p>
<ul><li>{UPDATES}</li>
<li>{PASSCODE}<ul><li>{DIGITS}</li><li>{LOCKS}</li></ul></li>
<li>{MEDIA}</li></ul>
<p>{AFTER}</p></body></html>"""


def nested_docx() -> bytes:
    """The list as Word writes it with its own styles: nesting by "List Bullet 2"."""
    document = docx.Document()
    document.add_heading("2. Devices", 1)
    document.add_paragraph(LEAD_IN)
    document.add_paragraph(UPDATES, style="List Bullet")
    document.add_paragraph(PASSCODE, style="List Bullet")
    document.add_paragraph(DIGITS, style="List Bullet 2")
    document.add_paragraph(LOCKS, style="List Bullet 2")
    document.add_paragraph(MEDIA, style="List Bullet")
    document.add_paragraph(AFTER)
    return docx_bytes(document)


def clause_with(clauses: Sequence[Clause], words: str) -> Clause:
    [clause] = [c for c in clauses if words in c.text]
    return clause


def check_nested(clauses: Sequence[Clause]) -> None:
    for sub_item in (DIGITS, LOCKS):
        assert clause_with(clauses, sub_item).text == f"{LEAD_IN} {PASSCODE} {sub_item}"
    for item in (UPDATES, MEDIA):
        assert clause_with(clauses, item).text == f"{LEAD_IN} {item}"
    assert clause_with(clauses, AFTER).text == AFTER
    # The parent item is quoted with each sub-item, not as a clause of its own besides.
    assert all(c.text.endswith((DIGITS, LOCKS)) for c in clauses if PASSCODE in c.text)


def test_markdown_sub_items_keep_their_parent_item_as_lead_in() -> None:
    check_nested(read_policy("devices.md", NESTED_MARKDOWN.encode()).clauses)


def test_html_sub_items_keep_their_parent_item_as_lead_in() -> None:
    check_nested(read_policy("devices.html", NESTED_HTML.encode()).clauses)


def test_docx_sub_items_keep_their_parent_item_as_lead_in() -> None:
    check_nested(read_policy("devices.docx", nested_docx()).clauses)


def test_docx_list_bullet_2_is_read_one_level_deeper() -> None:
    _, blocks = read_docx(nested_docx())
    depth = {b.text: b.level for b in blocks if b.kind == "item"}
    assert (depth[PASSCODE], depth[DIGITS], depth[LOCKS], depth[MEDIA]) == (0, 1, 1, 0)


def test_last_sub_item_is_not_glued_to_the_next_item_nor_the_last_item_to_a_paragraph() -> None:
    text = (
        "## 4. Photos\n\n"
        "- Photos of customers or their homes need the customer's written consent, and:\n"
        "  - a signed form\n"
        "  - a date\n"
        "- Company logos are used only in the versions Marketing publishes on the intranet.\n\n"
        "See the brand guide.\n"
    )
    _, clauses = build_clauses(parse_markdown(text))
    logos = clause_with(clauses, "Company logos")
    assert logos.text.startswith("Company logos") and "a date" not in logos.text
    assert "brand guide" not in logos.text
    assert clause_with(clauses, "a date").text.endswith("consent, and: a date")
    assert clause_with(clauses, "brand guide").text == "See the brand guide."


def test_a_new_list_after_a_paragraph_does_not_inherit_the_old_lists_lead_ins() -> None:
    text = f"## 2. Devices\n\n{LEAD_IN}\n\n- {PASSCODE}\n  - {DIGITS}\n\n{AFTER}\n\n- {MEDIA}\n"
    clauses = read_policy("devices.md", text.encode()).clauses
    assert clause_with(clauses, MEDIA).text == MEDIA


def test_long_lead_ins_are_shortened_keeping_the_nearest_whole() -> None:
    preamble = "This section applies to every employee, contractor and volunteer. " * 3
    outer = preamble + "Before connecting to company systems, all users must ensure that:"
    middle = (
        "the device is protected by a passcode that meets the standard the IT department "
        "publishes on the intranet each year, and in particular:"
    )
    prefix = lead_in_prefix([outer, middle])
    assert len(prefix) <= LEAD_IN_CHARS
    assert prefix.endswith(middle)
    assert prefix.startswith("Before connecting") and "…" in prefix
    text = f"## 2. Devices\n\n{outer}\n\n- {PASSCODE}\n  - {middle}\n    - {DIGITS}\n"
    clauses = read_policy("devices.md", text.encode()).clauses
    deepest = clause_with(clauses, DIGITS)
    assert deepest.text.endswith(f"{middle} {DIGITS}")
    assert len(deepest.text) <= MAX_CHARS


def test_no_word_of_a_shortened_lead_in_or_a_parent_item_is_lost() -> None:
    scope = (
        "These rules apply on every account an employee holds, personal or official, on any "
        "site, in any language, during and outside working hours, for as long as employed."
    )
    parent = "Photos taken at company events are welcome on personal accounts"
    text = f"## 2. Devices\n\n{scope} {LEAD_IN}\n\n- {UPDATES}\n- {parent}\n  - {DIGITS}\n"
    clauses = read_policy("devices.md", text.encode()).clauses
    everything = " ".join(c.text for c in clauses)
    assert scope in everything
    assert clause_with(clauses, UPDATES).text == f"{LEAD_IN} {UPDATES}"
    assert any(c.text == f"{LEAD_IN} {parent}" for c in clauses)
    assert clause_with(clauses, DIGITS).text == f"{LEAD_IN} {parent} {DIGITS}"
