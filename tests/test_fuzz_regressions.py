"""Inputs the atheris harness (bench/fuzz.py) found crashing the readers, kept small, and a
check that every harness target takes its own seeds.

Each input here once escaped `read_policy` as an exception other than PolicyError; now it
reads or is refused with a message. docs/reliability.md lists the runs that found them.
"""

from __future__ import annotations

import pytest

from bench import fuzz
from bot.ingest import read_policy
from bot.models import PolicyError

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
        for seed in fuzz.TARGETS[target][1]():
            assert read_policy(f"seed.{suffix}", seed).clauses


def test_docx_mutator_changes_one_part_and_keeps_a_package() -> None:
    seed = fuzz.docx_seeds()[0]
    before = dict(fuzz._zip_members(seed))

    def flip(data: bytes, max_size: int) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if data else b"x"

    mutated = {fuzz.mutate_docx(seed, 10 * len(seed), n, flip) for n in range(20)}
    for data in mutated:
        try:
            after = dict(fuzz._zip_members(data))
        except Exception:  # the occasional whole-file mutation
            continue
        assert after.keys() == before.keys()
        assert sum(after[name] != before[name] for name in before) == 1
