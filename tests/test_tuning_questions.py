"""eval/tuning: the questions added over the tuning policies, where they may be used and how
bench/train_coverage.py fits on them beside the tuning sets' first questions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench import sets
from bench.sets import (
    ADDED_TUNING_QUESTIONS,
    POLICYQA_DEV,
    SHARED_POLICIES,
    TUNING_SETS,
    EvalSet,
    added_tuning_questions,
    bundled_set,
    external_sets,
)
from bot.evaluation import load_questions
from bot.retrieval.semantic import semantic_available
from bot.store.database import Storage
from tests.test_retrieval import HashingEmbedder

needs_shared = pytest.mark.skipif(
    not SHARED_POLICIES.is_dir(), reason="shared evaluation policies are not on this machine"
)

ADDED_FILES = sorted(ADDED_TUNING_QUESTIONS.glob("*.jsonl"))


def test_every_added_file_is_over_a_tuning_policy() -> None:
    assert ADDED_FILES
    assert {f.stem for f in ADDED_FILES} <= TUNING_SETS


def test_added_questions_look_alike_covered_or_not() -> None:
    """Why they were written: neither their share of uncovered questions nor their length
    gives the answer away."""
    for path in ADDED_FILES:
        questions = load_questions(path)
        covered = [len(q.question.split()) for q in questions if q.covered]
        uncovered = [len(q.question.split()) for q in questions if not q.covered]
        assert 0.3 <= len(uncovered) / len(questions) <= 0.5, path.name
        assert sum(uncovered) / len(uncovered) >= 0.7 * sum(covered) / len(covered), path.name


@needs_shared
def test_each_covered_added_question_points_at_a_clause_of_its_policy() -> None:
    tuning = {s.name: s for s in [bundled_set(), *external_sets()] if s.tuning}
    for path in ADDED_FILES:
        eval_set = tuning[path.stem]
        questions = added_tuning_questions(eval_set)
        assert questions == load_questions(path)
        clauses = [c for versions in eval_set.all_version_ids() for c in eval_set.clauses(versions)]
        for q in questions:
            if q.covered:
                assert any(q.matches(c) for c in clauses), (path.name, q.question)


def test_a_held_out_set_gets_no_added_questions_whatever_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held_out = "stonybrook-social-media-guidelines"
    for name in (held_out, "osc-hatch-act-faq"):
        (tmp_path / f"{name}.jsonl").write_text(
            '{"question": "may I post this?", "lines": []}\n', encoding="utf-8"
        )
    monkeypatch.setattr(sets, "ADDED_TUNING_QUESTIONS", tmp_path)
    assert added_tuning_questions(EvalSet(held_out, Storage.memory())) == []
    assert [
        q.question for q in added_tuning_questions(EvalSet("osc-hatch-act-faq", Storage.memory()))
    ] == ["may I post this?"]


@pytest.mark.skipif(not semantic_available(), reason="numpy engine not installed")
@needs_shared
def test_the_added_questions_are_tuning_rows_in_their_policys_fold_and_change_no_other_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import train_coverage

    if not POLICYQA_DEV.exists():
        pytest.skip("PolicyQA's dev split is not on this machine")
    with_added = train_coverage.collect(HashingEmbedder(), reduced=True)
    monkeypatch.setattr(sets, "ADDED_TUNING_QUESTIONS", tmp_path)
    without = train_coverage.collect(HashingEmbedder(), reduced=True)

    added = [r for r in with_added if train_coverage.added(r)]
    assert added and not any(train_coverage.added(r) for r in without)
    tuning = [r for r in added if r.role == "tuning"]
    assert tuning and all(r.policies == frozenset({"bundled"}) for r in tuning)
    assert any(r.covered for r in tuning) and not all(r.covered for r in tuning)
    # The rest are the added covered questions asked of privacy policies.
    assert all(r.role == "cross" and not r.covered for r in added if r.role != "tuning")
    # Every other row is as it was without them ...
    assert [r for r in with_added if not train_coverage.added(r)] == without
    # ... so a fitting that leaves them out gives the same model; fitted on them, another.
    without_them = replace(train_coverage.SHIPPED, added=False)
    assert train_coverage.train(with_added, without_them) == train_coverage.train(
        without, without_them
    )
    with_them = replace(without_them, added=True)
    assert train_coverage.train(with_added, with_them) != train_coverage.train(
        without, without_them
    )
    # Leaving the bundled policy out leaves its added questions out of the fit, and they
    # are measured there.
    folds = train_coverage.lopo(with_added, with_them, tuning_only=True)
    if "bundled" in folds:
        assert any(train_coverage.added(r) for r in folds["bundled"][1])
