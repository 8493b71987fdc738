"""`policybot eval --llm`: the configured LLM scored on labeled questions, against the loopback
OpenAI-compatible stub, with counts worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunCli
from tests.fakes.openai_stub import HANG, OpenAIStub, Recorded, Reply, answer, completion, error

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
PARTY = "may I post photos from the holiday party on instagram?"
PHONE = "may I use my phone?"
CAFETERIA = "what time does the cafeteria open?"
EIFFEL = "how tall is the eiffel tower?"  # no word in common with the policy: below the floor
DOG = "can I bring my dog to the office"
BLOG = "can I mention a client on my personal blog?"

#: (question, the sections that answer it): the labeled file the tests score.
LABELED = [
    (ROADMAP, ["3.3"]),
    (PARTY, ["17.1"]),  # labeled with another section than the one the model will cite
    (PHONE, ["11.2"]),
    (CAFETERIA, []),
    (EIFFEL, []),
    (DOG, []),
    (BLOG, ["2.1"]),
]


def cite(section: str, verdict: str, text: str) -> Any:
    def reply(request: Recorded) -> Reply:
        ids = [c["id"] for c in request.data["clauses"] if c["section"].startswith(section)]
        return answer(verdict, text, ids[:1])

    return reply


#: What the scripted model does with each question it is asked.
MODEL = {
    ROADMAP: cite(
        "3.3", "not_allowed", "You can't share the roadmap before Marketing makes it public."
    ),
    PARTY: cite(
        "9.2", "depends", "Yes, as long as everyone identifiable in the photos has agreed to it."
    ),
    PHONE: lambda request: answer("not_covered", "The clauses do not say.", []),
    CAFETERIA: lambda request: answer("not_covered", "The clauses do not say.", []),
    DOG: lambda request: error(500),
    BLOG: lambda request: completion("Sure! The answer is yes."),
}


def model(request: Recorded) -> Reply:
    return MODEL[request.data["question"]](request)  # type: ignore[no-any-return]


@pytest.fixture
def cli_env(llm_stub: OpenAIStub) -> dict[str, str]:
    return {
        "POLICYBOT_DB": "",
        "POLICYBOT_RETRIEVER": "lexical",
        "OPENAI_BASE_URL": llm_stub.url,
        "OPENAI_API_KEY": "sk-eval-test",
        "POLICYBOT_LLM_MODEL": "stub-model",
        "POLICYBOT_LLM_TIMEOUT": "5",
        "POLICYBOT_LLM_RETRIES": "0",
        # Whatever retrieval scores these questions, a fallback lands between the thresholds
        # (uncertain) unless nothing was found; the floor stays the default.
        "POLICYBOT_MIN_CONFIDENCE": "0.99",
        "POLICYBOT_UNCERTAIN_CONFIDENCE": "0.05",
    }


@pytest.fixture
def labeled(tmp_path: Path) -> Path:
    path = tmp_path / "our-questions.jsonl"
    lines = [json.dumps({"question": q, "sections": s}) for q, s in LABELED]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_llm_counts_outcomes_citations_and_fallbacks(
    run: RunCli, llm_stub: OpenAIStub, labeled: Path
) -> None:
    llm_stub.script(*[model] * 6)
    result = run("eval", "--llm", "--json", str(labeled))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Answered: ROADMAP (cites 3.3, a hit) and PARTY (cites 9.2, labeled 17.1: harmful).
    # Not covered: PHONE and CAFETERIA (the model's word) and EIFFEL (below the floor, no call).
    # Uncertain: DOG (HTTP 500) and BLOG (no JSON), on retrieval's confidence.
    counts = {k: report[k] for k in ("questions", "covered", "answered", "uncertain")}
    assert counts == {"questions": 7, "covered": 4, "answered": 2, "uncertain": 2}
    assert report["not_covered"] == 3
    assert (report["citation_hits"], report["citation_hit_rate"]) == (1, 0.5)
    assert (report["harmful"], report["harmful_rate"]) == (1, round(1 / 7, 4))
    # Flagged (sent to the policy team): PHONE, CAFETERIA, EIFFEL, DOG, BLOG; rightly the
    # three the policy does not cover, wrongly PHONE and BLOG.
    assert report["not_covered_precision"] == 0.6 and report["not_covered_recall"] == 1.0
    assert report["not_covered_f1"] == 0.75
    assert (report["llm_calls"], report["fallbacks"]) == (6, 2)
    # Five replies came back with usage; the HTTP 500 had none.
    assert (report["prompt_tokens"], report["completion_tokens"]) == (5 * 321, 5 * 45)
    assert len(llm_stub.requests) == 6 and llm_stub.unused == 0
    asked = [r.data["question"] for r in llm_stub.requests]
    assert EIFFEL not in asked and all(len(r.data["clauses"]) == 8 for r in llm_stub.requests)
    by_question = {r["question"]: r for r in report["results"]}
    assert by_question[ROADMAP]["cited"][0].startswith("3.3")
    assert by_question[PARTY]["cited"][0].startswith("9.2")
    assert not by_question[EIFFEL]["asked"]
    assert "HTTP 500" in by_question[DOG]["fallback"]
    assert "no JSON object" in by_question[BLOG]["fallback"]
    assert "sk-eval-test" not in result.output
    assert "7/7 questions" in result.stderr
    # An evaluation is not a question anyone asked: nothing is logged or put up for review.
    listed = run("questions", "list", "--status", "all", "--json")
    assert listed.exit_code == 0 and listed.stdout == ""


def test_eval_llm_prints_a_table(run: RunCli, llm_stub: OpenAIStub, labeled: Path) -> None:
    llm_stub.script(*[model] * 6)
    result = run("eval", "--llm", str(labeled))
    assert result.exit_code == 0, result.output
    assert "citation hit" in result.stdout and "fallbacks" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "our-questions" in line)
    assert "0.750" in row and "0.500" in row


def test_a_hanging_llm_is_a_fallback_within_the_timeout(
    run: RunCli, llm_stub: OpenAIStub, tmp_path: Path
) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"question": ROADMAP, "sections": ["3.3"]}) + "\n")
    llm_stub.script(HANG)
    result = run("eval", "--llm", "--json", str(path), env={"POLICYBOT_LLM_TIMEOUT": "0.2"})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["fallbacks"], report["uncertain"]) == (1, 1)
    assert report["results"][0]["fallback"] == "the LLM did not reply within 0.2s"


def test_eval_llm_without_an_llm_says_how_to_configure_one(
    run: RunCli, llm_stub: OpenAIStub, labeled: Path
) -> None:
    result = run(
        "eval", "--llm", str(labeled), env={"OPENAI_BASE_URL": "", "POLICYBOT_LLM_MODEL": ""}
    )
    assert result.exit_code == 2
    assert "set OPENAI_BASE_URL and POLICYBOT_LLM_MODEL" in result.output
    assert llm_stub.requests == []


def test_a_bad_labeled_file_is_refused_before_any_call(
    run: RunCli, llm_stub: OpenAIStub, labeled: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "fine"}\n{"sections": ["1"]}\n')
    result = run("eval", "--llm", str(labeled), str(broken))
    assert result.exit_code == 3 and "broken.jsonl:2" in result.output
    assert llm_stub.requests == []
