"""A model that is missing or damaged turns semantic retrieval off with one log line: every
question is still answered, by the lexical retriever, and nothing crashes."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.policies import PolicyLibrary
from bot.retrieval import semantic
from bot.retrieval.lexical import LexicalRetriever
from bot.retrieval.semantic import HybridRetriever, model_folder, semantic_available
from bot.store.database import Storage
from tests.conftest import BUNDLED_POLICY
from tests.reliability import record

pytestmark = pytest.mark.skipif(not semantic_available(), reason="the model is not installed")

QUESTIONS = (
    "may I post photos from the team offsite?",
    "can I share our quarterly results on LinkedIn before they are published?",
    "what time does the cafeteria open?",
)


def copy_of_model(into: Path) -> Path:
    installed = model_folder()
    assert installed is not None
    return Path(shutil.copytree(installed, into / "model"))


def weights_missing(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def weights_truncated(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: 1 << 20])


def tokenizer_garbled(folder: Path) -> None:
    (folder / "tokenizer.json").write_text("{ not json", encoding="utf-8")


def folder_gone(folder: Path) -> None:
    shutil.rmtree(folder)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "weights missing": weights_missing,
    "weights truncated": weights_truncated,
    "tokenizer garbled": tokenizer_garbled,
    "folder gone": folder_gone,
}


def semantic_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == semantic.__name__ and r.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_model_answers_lexically_with_one_log_line(
    damage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = copy_of_model(tmp_path)
    DAMAGE[damage](folder)
    storage = Storage.memory()
    versions = [PolicyLibrary(storage).load_file(BUNDLED_POLICY).version.id]
    hybrid = HybridRetriever(storage, model=folder)
    lexical = LexicalRetriever(storage)
    with caplog.at_level(logging.WARNING):
        answers = [hybrid.retrieve(q, versions) for q in QUESTIONS]
    expected = [lexical.retrieve(q, versions) for q in QUESTIONS]
    assert answers == expected
    warnings = semantic_warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "lexical" in warnings[0].getMessage() and "\n" not in warnings[0].getMessage()
    assert hybrid.off_because is not None
    record(
        "semantic retrieval, model missing or damaged",
        "pytest tests/test_semantic_fallback.py",
        damaged_models=1,
        questions=len(QUESTIONS),
        answered_as_lexical=sum(a == b for a, b in zip(answers, expected, strict=True)),
        log_lines=len(warnings),
        crashes=0,
    )


def test_the_cli_answers_every_question_when_the_installed_model_is_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = copy_of_model(tmp_path)
    weights_truncated(folder)
    # The installed package's folder, as `auto` finds it, is the damaged copy.
    monkeypatch.setattr(semantic, "model_folder", lambda: folder)
    env = {"POLICYBOT_DB": str(tmp_path / "cli.db"), "POLICYBOT_RETRIEVER": "auto"}
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(
            main, ["ask", "--json", "-"], input="\n".join(QUESTIONS) + "\n", env=env
        )
    assert result.exit_code == 0, result.output
    replies = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["question"] for r in replies] == list(QUESTIONS)
    assert replies[0]["answered"] and replies[0]["citations"]
    assert len(semantic_warnings(caplog)) == 1
    record(
        "semantic retrieval, model missing or damaged",
        "pytest tests/test_semantic_fallback.py",
        cli_questions=len(QUESTIONS),
        cli_answered=len(replies),
        cli_exit_code=result.exit_code,
    )
