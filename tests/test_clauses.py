from __future__ import annotations

from bot.reading.clauses import MAX_CHARS, build_clauses, split_heading, split_sentences
from bot.reading.ingest import read_policy
from bot.reading.markdown import parse_markdown, parse_plain_text
from tests.conftest import BUNDLED_POLICY

LONG_SENTENCE = (
    "Employees must not share non-public information about customers, shipments, prices or "
    "contracts on any personal account or public forum."
)


def test_numbered_headings_give_section_numbers_and_titles() -> None:
    text = (
        "# Policy\n\n## 4. Confidential information\n\nOwner: Legal\n\n### 4.2 Customer data\n\n"
        + LONG_SENTENCE
    )
    title, clauses = build_clauses(parse_markdown(text))
    assert title == "Policy"
    [clause] = clauses
    assert (clause.section, clause.section_title, clause.owner) == ("4.2", "Customer data", "Legal")
    assert clause.reference == "4.2 Customer data"
    assert clause.heading_path == ("4. Confidential information", "4.2 Customer data")
    assert clause.line_start == 9


def test_split_heading_variants() -> None:
    assert split_heading("4.2 Customer data") == ("4.2", "Customer data")
    assert split_heading("Section 7. Devices") == ("7", "Devices")
    assert split_heading("A. Scope") == ("A", "Scope")
    assert split_heading("Introduction") == ("", "Introduction")
    assert split_heading("I think so") == ("", "I think so")


def test_list_items_become_clauses_quoted_with_their_lead_in() -> None:
    text = (
        "## 3. Never post\n\nNever post the following on any account:\n\n"
        "- customer names, shipment details, contract prices or any other data"
        " taken from our systems\n"
        "- unreleased product plans, internal roadmaps, launch dates, code names and pricing\n"
        "- a\n- b\n"
    )
    _, clauses = build_clauses(parse_markdown(text))
    assert all(c.text.startswith("Never post the following on any account:") for c in clauses)
    assert any("roadmaps" in c.text and "customer names" not in c.text for c in clauses)
    assert all(c.section == "3" for c in clauses)


def test_long_paragraph_is_cut_at_sentences_within_bounds() -> None:
    paragraph = " ".join(f"Rule {i}: {LONG_SENTENCE}" for i in range(12))
    _, clauses = build_clauses(parse_markdown(f"## 1. Rules\n\n{paragraph}\n"))
    assert len(clauses) > 3
    assert all(80 <= len(c.text) <= MAX_CHARS for c in clauses)
    assert " ".join(c.text for c in clauses) == paragraph


def test_run_on_sentence_without_punctuation_is_still_cut() -> None:
    words = " ".join(["word"] * 400)
    _, clauses = build_clauses(parse_markdown(f"## 1. Rules\n\n{words}\n"))
    assert len(clauses) > 1  # cut, not dropped: no clause at all would pass the bound below
    assert all(len(c.text) <= MAX_CHARS for c in clauses)


def test_plain_text_one_sentence_per_line_without_blank_lines() -> None:
    lines = [
        f"Employees must follow rule number {i} when they use social media for work."
        for i in range(20)
    ]
    _, clauses = build_clauses(parse_plain_text("\n".join(lines)))
    assert len(clauses) >= 5
    assert all(len(c.text) <= MAX_CHARS for c in clauses)
    assert all(len(c.text) >= 60 for c in clauses)


def test_plain_text_without_headings_still_splits() -> None:
    text = "\n\n".join(LONG_SENTENCE + f" Example {i} applies." for i in range(6))
    policy = read_policy("plain.txt", text.encode())
    assert len(policy.clauses) == 6
    assert all(c.section == "" for c in policy.clauses)


def test_plain_text_numbered_headings() -> None:
    text = f"SOCIAL MEDIA POLICY\n\n1. Scope\n\n{LONG_SENTENCE}\n\n2.1 Devices\n\n{LONG_SENTENCE}\n"
    policy = read_policy("p.txt", text.encode())
    assert [c.reference for c in policy.clauses] == ["1 Scope", "2.1 Devices"]


def test_sentence_splitter_keeps_abbreviations() -> None:
    assert split_sentences("Use e.g. Slack. Then stop. U.S. rules apply.") == [
        "Use e.g. Slack.",
        "Then stop.",
        "U.S. rules apply.",
    ]


def test_bundled_policy_reads_into_citable_clauses() -> None:
    policy = read_policy(BUNDLED_POLICY.name, BUNDLED_POLICY.read_bytes())
    assert policy.version_label and policy.owners
    sections = {c.section.split(".")[0] for c in policy.clauses if c.section}
    assert len(sections) >= 12
    assert len(policy.clauses) >= 50
    assert all(80 <= len(c.text) <= MAX_CHARS for c in policy.clauses)
    numbered = [c for c in policy.clauses if c.section]
    assert all(c.owner for c in numbered)
