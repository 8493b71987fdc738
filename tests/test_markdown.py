"""Markdown into blocks with their source lines, as markdown-it-py reads CommonMark."""

from __future__ import annotations

import hashlib
import json

from bot.models import Block
from bot.reading.ingest import read_markdown, read_policy
from bot.reading.markdown import parse_markdown
from tests.conftest import BUNDLED_POLICY


def test_block_quote_is_read_without_its_marks() -> None:
    text = (
        "> Employees must not share passwords,\n> even with IT.\n\n"
        "> To be exempt, all of these must hold:\n>\n> 1. the duties continue after hours;\n"
        "> 2. the position is in the United States.\n"
    )
    assert parse_markdown(text) == [
        Block("paragraph", "Employees must not share passwords, even with IT.", 0, 1, 2),
        Block("paragraph", "To be exempt, all of these must hold:", 0, 4, 4),
        Block("item", "the duties continue after hours;", 0, 6, 6),
        Block("item", "the position is in the United States.", 0, 7, 7),
    ]


def test_a_code_block_is_one_paragraph_of_its_text_without_the_fence() -> None:
    text = (
        "Put this disclaimer on a personal profile:\n"
        "```text\nViews are my own\n\nand not my employer's.\n```\n\n"
        "Set the proxy as below.\n\n"
        "    - host: proxy.example\n    | port | 8080 |\n"
    )
    assert parse_markdown(text) == [
        Block("paragraph", "Put this disclaimer on a personal profile:", 0, 1, 1),
        Block("paragraph", "Views are my own and not my employer's.", 0, 3, 5),
        Block("paragraph", "Set the proxy as below.", 0, 8, 8),
        Block("paragraph", "- host: proxy.example | port | 8080 |", 0, 10, 11),
    ]


def test_table_rows_are_items_with_their_cells_and_lines() -> None:
    text = (
        "Platform | Who approves\n--- | ---\nTikTok | *Marketing* \\*only\\*\n\n"
        "| Account | Owner |\n| Careers page | HR |\n"
    )
    assert parse_markdown(text) == [
        Block("item", "Platform; Who approves", 0, 1, 1),
        Block("item", "TikTok; Marketing *only*", 0, 3, 3),
        Block("item", "Account; Owner", 0, 5, 5),  # no delimiter row: still rows, as before
        Block("item", "Careers page; HR", 0, 6, 6),
    ]


def test_list_notations_commonmark_lacks_still_start_items() -> None:
    text = (
        "Never post:\n(a) customer names;\nb) shipment details, even\nwhen asked;\n"
        "• prices.\n2. Also never post rumours.\n"
    )
    assert parse_markdown(text) == [
        Block("paragraph", "Never post:", 0, 1, 1),
        Block("item", "customer names;", 0, 2, 2),
        Block("item", "shipment details, even when asked;", 0, 3, 4),
        Block("item", "prices.", 0, 5, 5),
        Block("item", "Also never post rumours.", 0, 6, 6),
    ]


def test_nested_list_items_carry_their_depth_and_lines() -> None:
    text = "- Ask first\n  before posting.\n  - photos of colleagues\n    (a) at events\n- Done\n"
    assert parse_markdown(text) == [
        Block("item", "Ask first before posting.", 0, 1, 2),
        Block("item", "photos of colleagues", 1, 3, 3),
        Block("item", "at events", 2, 4, 4),
        Block("item", "Done", 0, 5, 5),
    ]


def test_inline_markup_is_read_as_a_reader_sees_it() -> None:
    text = (
        "Read the [terms][tos] at <https://example.com/terms> &amp; keep **snake_case_names**, "
        "`a*b*c` and ![the logo](logo.png) as <b>written</b>.\n\n[tos]: https://example.com/tos\n"
    )
    (block,) = parse_markdown(text)
    assert block.text == (
        "Read the terms at https://example.com/terms & keep snake_case_names, a*b*c and "
        "the logo as written."
    )


def test_headings_keep_their_lines_after_front_matter() -> None:
    text = (
        "---\ntitle: Devices\n---\n# Devices\n\nSection two\n===========\n\n## 2.1 Phones ##\n\n"
        "<details>\n<summary>Lost phones</summary>\nReport a lost phone the same day.\n</details>\n\n"
        "<!-- never closed\n\n## 2.2 Laptops\n"
    )
    fields, blocks = read_markdown(text.encode())
    assert fields == {"title": "Devices"}
    assert blocks == [
        Block("heading", "Devices", 1, 4, 4),
        Block("heading", "Section two", 1, 6, 7),
        Block("heading", "2.1 Phones", 2, 9, 9),
        Block("paragraph", "Lost phones Report a lost phone the same day.", 0, 11, 14),
        Block("paragraph", "<!-- never closed", 0, 16, 16),
        Block("heading", "2.2 Laptops", 2, 18, 18),
    ]


def test_a_document_of_front_matter_alone_reads_as_no_blocks() -> None:
    # Hypothesis found it: no tokens at all once the front matter is taken off.
    assert read_markdown(b"---\n\n...") == ({}, [])
    assert parse_markdown("") == parse_markdown(" \n\n") == []


def test_bundled_policy_reads_into_the_clauses_it_had_before_markdown_it() -> None:
    # Digest of the clause list the hand-written reader gave; a change here changes what the
    # bundled policy cites, so it should be one somebody meant.
    policy = read_policy(BUNDLED_POLICY.name, BUNDLED_POLICY.read_bytes())
    listed = [
        [
            c.text,
            c.section,
            c.section_title,
            list(c.heading_path),
            c.owner,
            c.line_start,
            c.line_end,
        ]
        for c in policy.clauses
    ]
    digest = hashlib.sha256(json.dumps(listed).encode()).hexdigest()
    assert (len(listed), digest[:16]) == (181, "aa9b37e50a7770bb")
