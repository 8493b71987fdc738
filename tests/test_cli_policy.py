"""The issue's "done when", at the command line: load DOCX, diff, rollback, refuse a bad PDF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docx

from tests.conftest import RunCli
from tests.documents import add_heading_numbering, docx_bytes, make_pdf, number_paragraph
from tests.test_policies import LAUNCHES, LIVESTREAM, V1, V2


def ask_json(run: RunCli, question: str) -> dict[str, Any]:
    result = run("ask", "--json", question)
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.output)
    return answer


def test_load_docx_with_numbered_headings_cites_those_numbers(run: RunCli, tmp_path: Path) -> None:
    document = docx.Document()
    num_id = add_heading_numbering(document)
    document.add_paragraph("Acme Social Media Policy", style="Title")
    number_paragraph(document.add_heading("Scope", 1), num_id, 0)
    document.add_paragraph(
        "This policy applies to every employee who posts about Acme on any social network."
    )
    number_paragraph(document.add_heading("Confidential information", 1), num_id, 0)
    number_paragraph(document.add_heading("Customer data", 2), num_id, 1)
    document.add_paragraph(
        "Employees must not share customer names, shipment details or contract prices on "
        "LinkedIn, Facebook or any other social network."
    )
    path = tmp_path / "acme-policy.docx"
    path.write_bytes(docx_bytes(document))

    loaded = run("policy", "load", str(path))
    assert loaded.exit_code == 0, loaded.output
    assert "Read 2 clauses from acme-policy.docx" in loaded.output
    assert "is now active" in loaded.output
    shown = run("policy", "show")
    assert "2.1 Customer data" in shown.output and "1 Scope" in shown.output
    answer = ask_json(run, "may I share customer names on LinkedIn?")
    citation = answer["citations"][0]
    assert (citation["section"], citation["title"]) == ("2.1", "Customer data")
    assert citation["document_title"] == "Acme Social Media Policy"
    text = run("ask", "may I share customer names on LinkedIn?").output
    assert "section 2.1 Customer data" in text and "Acme Social Media Policy" in text


def test_diff_shows_a_changed_clause_and_rollback_restores_earlier_answers(
    run: RunCli,
    tmp_path: Path,
) -> None:
    v1, v2 = tmp_path / "v1" / "acme.md", tmp_path / "v2" / "acme.md"
    for path, text in ((v1, V1), (v2, V2)):
        path.parent.mkdir()
        path.write_text(text)
    assert run("policy", "load", str(v1)).exit_code == 0
    assert not ask_json(run, LIVESTREAM)["answered"]  # open, for the policy team

    staged = run("policy", "load", "--stage", str(v2))
    assert staged.exit_code == 0 and "Staged, not active yet" in staged.output
    diff = run("policy", "diff")
    assert diff.exit_code == 0, diff.output
    assert "~ changed 2.2 Product launches" in diff.output
    assert "old: “Employees may mention upcoming product launches" in diff.output
    assert "new: “Employees must never mention upcoming product launches" in diff.output
    assert (
        "+ added 4 Livestreaming" in diff.output and "- removed 3 Personal devices" in diff.output
    )
    version = json.loads(run("policy", "diff", "--json").output)["version"]

    activated = run("policy", "activate", str(version), "--by", "jane")
    assert activated.exit_code == 0, activated.output
    assert "1 now answered by the policy" in activated.output
    flagged = run("questions", "list", "--questions")
    assert f"v{version} §4" in flagged.output
    assert ask_json(run, LIVESTREAM)["citations"][0]["section"] == "4"
    assert "must never" in ask_json(run, LAUNCHES)["citations"][0]["text"]

    rolled = run("policy", "rollback")
    assert rolled.exit_code == 0 and "is now active" in rolled.output
    assert not ask_json(run, LIVESTREAM)["answered"]
    assert "Employees may mention" in ask_json(run, LAUNCHES)["citations"][0]["text"]

    history = run("policy", "history", "acme")
    assert history.exit_code == 0
    assert "rolled back to" in history.output and "jane" in history.output


def test_corrupt_pdf_is_refused_while_ask_answers_from_the_active_version(
    run: RunCli,
    tmp_path: Path,
) -> None:
    policy = tmp_path / "acme.md"
    policy.write_text(V1)
    assert run("policy", "load", str(policy)).exit_code == 0
    broken = tmp_path / "acme.pdf"
    broken.write_bytes(make_pdf([["1. Scope", "Everyone must behave online."]])[:400])
    refused = run("policy", "load", str(broken), "--name", "acme")
    assert refused.exit_code == 3
    assert "acme.pdf" in refused.output and "damaged" in refused.output
    assert "Traceback" not in refused.output
    answer = ask_json(run, LAUNCHES)
    assert answer["answered"] and answer["citations"][0]["section"] == "2.2"
    assert "Employees may mention" in answer["citations"][0]["text"]
    listing = run("policy", "list").output
    assert listing.count("acme.md") == 1 and "acme.pdf" not in listing


def test_discard_and_usage_errors(run: RunCli, tmp_path: Path) -> None:
    policy = tmp_path / "acme.md"
    policy.write_text(V1)
    run("policy", "load", str(policy))
    policy.write_text(V2)
    staged = json.loads(run("policy", "load", "--stage", "--json", str(policy)).output)
    version = staged["version"]["id"]
    assert staged["version"]["status"] == "staged" and staged["created"]
    discarded = run("policy", "discard", str(version))
    assert discarded.exit_code == 0 and f"v{version}" in discarded.output
    assert run("policy", "diff").exit_code == 3  # nothing staged any more
    assert run("policy", "activate", "999").exit_code == 3
    rollback = run("policy", "rollback", "acme")
    assert rollback.exit_code == 3 and "no earlier active version" in rollback.output
