from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from tests.conftest import BUNDLED_POLICY, RunCli


def test_ask_json_from_stdin_loads_bundled_policy_and_logs_both(run: RunCli) -> None:
    result = run(
        "ask",
        "--json",
        "-",
        stdin="may I share our unreleased roadmap on LinkedIn?\nwhat time does the cafeteria open?\n",
    )
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert first["answered"] and first["citations"][0]["section"] == "3.3"
    assert set(first["citations"][0]) >= {"section", "title", "text", "score"}
    assert first["policy_version"] and first["question_id"]
    assert second["answered"] is False and second["citations"] == []
    listed = run("questions", "list", "--json")
    ids = {json.loads(line)["id"] for line in listed.output.splitlines()}
    assert ids == {first["question_id"], second["question_id"]}
    open_only = run("questions", "list", "--status", "open", "--json")
    assert [json.loads(line)["id"] for line in open_only.output.splitlines()] == [
        second["question_id"]
    ]


def test_ask_text_output_quotes_clauses(run: RunCli) -> None:
    result = run("ask", "can I post pictures from the team offsite on instagram?")
    assert result.exit_code == 0
    assert "[9." in result.output and "“" in result.output


def test_empty_question_exits_1_with_message(run: RunCli) -> None:
    result = run("ask", "   ")
    assert result.exit_code == 1
    assert "type a question" in result.output


def test_missing_policy_file_exits_3(run: RunCli, tmp_path: Path) -> None:
    result = run("policy", "load", str(tmp_path / "nope.md"))
    assert result.exit_code == 3
    assert "No such file" in result.output


def test_unreadable_database_exits_4(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all" * 50)
    result = CliRunner().invoke(main, ["--db", str(bad), "ask", "may I tweet?"])
    assert result.exit_code == 4
    assert "Cannot use the database" in result.output


def test_policy_load_into_empty_database_loads_only_that_file(run: RunCli, tmp_path: Path) -> None:
    own = tmp_path / "acme-policy.md"
    own.write_text(
        "# Acme\n\n## 1. Devices\n\nAcme staff must lock their laptops whenever they leave "
        "them unattended in the office or on the road.\n"
    )
    assert run("policy", "load", str(own)).exit_code == 0
    shown = run("policy", "show")
    assert "1 Devices" in shown.output and "Brightwater" not in shown.output
    again = run("policy", "load", str(own))
    assert "already stored" in again.output
    listing = run("policy", "list")
    assert "acme-policy" in listing.output


def test_eval_reports_metrics(run: RunCli) -> None:
    path = Path(__file__).parent.parent / "eval" / "bundled-policy.jsonl"
    result = run("eval", "--json", "--policy", str(BUNDLED_POLICY), str(path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["questions"] >= 60 and 0 < report["recall_at_3"] <= 1
