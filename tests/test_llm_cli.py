"""The issue's "done when": `policybot ask --json` with OPENAI_BASE_URL on a loopback stub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.conftest import RunCli
from tests.fakes.openai_stub import HANG, OpenAIStub, answer

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"


@pytest.fixture
def cli_env(llm_stub: OpenAIStub) -> dict[str, str]:
    return {
        "POLICYBOT_DB": "",
        "OPENAI_BASE_URL": llm_stub.url,
        "OPENAI_API_KEY": "sk-cli-test",
        "POLICYBOT_LLM_MODEL": "stub-model",
        # Generous, so a loaded machine never turns a reply into a timeout; the hanging-LLM
        # test asks for a short one.
        "POLICYBOT_LLM_TIMEOUT": "5",
    }


def logged(run: RunCli) -> dict[str, Any]:
    listed = run("questions", "list", "--status", "all", "--json")
    (row,) = (json.loads(line) for line in listed.stdout.splitlines())
    return dict(row)


def test_ask_json_returns_the_stubs_answer_with_citations_resolved(
    run: RunCli, llm_stub: OpenAIStub
) -> None:
    llm_stub.script(
        lambda request: answer(
            "not_allowed", "No: the roadmap is confidential until announced.", ["C1", "C2"]
        )
    )
    result = run("ask", "--json", ROADMAP)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    (request,) = llm_stub.requests
    assert request.headers["authorization"] == "Bearer sk-cli-test"
    assert shown["source"] == "llm" and shown["verdict"] == "not_allowed"
    assert shown["text"].endswith("No: the roadmap is confidential until announced.")
    assert [c["text"] for c in shown["citations"]] == [
        request.clauses["C1"],
        request.clauses["C2"],
    ]
    assert shown["citations"][0]["section"] == "3.3"
    row = logged(run)
    assert row["llm_prompt_tokens"] == 321 and row["llm_completion_tokens"] == 45
    assert row["answer_verdict"] == "not_allowed" and row["notes"] == []


def test_an_invented_citation_gives_the_extractive_answer_and_the_log_says_why(
    run: RunCli, llm_stub: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    llm_stub.script(answer("allowed", "Yes, post it.", ["C1", "C77"]))
    result = run("ask", "--json", ROADMAP)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["source"] == "extractive" and shown["verdict"] == ""
    assert "Yes, post it" not in shown["text"] and shown["citations"][0]["section"] == "3.3"
    assert logged(run)["notes"] == [
        "llm fallback: the LLM's reply cites clause ids it was not given: C77"
    ]
    assert "not given: C77" in caplog.text  # and the warning is logged


def test_a_hanging_llm_gives_the_extractive_answer_and_the_log_says_why(
    run: RunCli, llm_stub: OpenAIStub
) -> None:
    llm_stub.script(HANG)
    result = run("ask", "--json", ROADMAP, env={"POLICYBOT_LLM_TIMEOUT": "0.2"})
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["source"] == "extractive" and shown["answered"]
    assert shown["citations"][0]["section"] == "3.3"
    (note,) = logged(run)["notes"]
    assert note == "llm fallback: the LLM did not reply within 0.2s"


def test_a_model_without_an_endpoint_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--db", str(tmp_path / "x.db"), "ask", ROADMAP],
        env={"POLICYBOT_LLM_MODEL": "gpt-4o-mini", "OPENAI_BASE_URL": ""},
    )
    assert result.exit_code == 2 and "OPENAI_BASE_URL is not" in result.output
