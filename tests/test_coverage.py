"""The coverage model: the committed file loads and behaves as its fitted figures say, its
training script is reproducible, and without embeddings the lexical confidence still
separates a covered question from an uncovered one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bot.config import DEFAULT_MIN_CONFIDENCE, DEFAULT_UNCERTAIN_CONFIDENCE
from bot.evaluation import load_questions
from bot.policies import PolicyLibrary
from bot.retrieval import coverage
from bot.retrieval.coverage import FEATURES, Cited, CoverageModel, ModelFileError
from bot.retrieval.lexical import Evidence, LexicalRetriever
from bot.retrieval.semantic import HybridRetriever, semantic_available
from bot.store.database import Storage
from tests.conftest import BUNDLED_POLICY
from tests.test_retrieval import BrokenEmbedder, HashingEmbedder

needs_numpy = pytest.mark.skipif(not semantic_available(), reason="numpy engine not installed")

ROOT = Path(__file__).resolve().parent.parent


def policy_similarities(best: float, typical: float, clauses: int = 40) -> Any:
    """A question's cosine to each of a policy's clauses: one at `best`, the rest near
    `typical`."""
    import numpy as np

    rest = typical + np.linspace(-0.08, 0.08, clauses - 1)
    return np.concatenate([[best], rest])


def strong_match() -> tuple[tuple[float, ...], ...]:
    """The nearest clause uses the question's words and stands well above the policy."""
    similarity = policy_similarities(0.75, 0.2)
    cited = [Cited(0.75, 0.9, 0.95), Cited(0.28, 0.3, 0.4), Cited(0.27, 0.2, 0.3)]
    return coverage.signals(similarity, cited, evidence(unknown=0.0))


def no_match() -> tuple[tuple[float, ...], ...]:
    """The policy has no word of the question, and no clause stands out."""
    similarity = policy_similarities(0.22, 0.18)
    cited = [Cited(0.22, 0.1, 0.15), Cited(0.21, 0.0, 0.1), Cited(0.2, 0.0, 0.1)]
    return coverage.signals(similarity, cited, evidence(unknown=0.8))


def evidence(unknown: float) -> Evidence:
    return Evidence(0.5, 0.5, unknown, 1.0, 0.1, 1.9, 0.2)


@needs_numpy
def test_the_committed_model_answers_a_strong_match_and_not_a_question_it_has_no_words_for() -> (
    None
):
    model = coverage.read(coverage.MODEL_FILE)
    assert model.features == FEATURES
    assert 0 < model.uncertain_point <= model.answer_point < 1
    assert model.confidence(strong_match()) >= DEFAULT_MIN_CONFIDENCE
    assert model.confidence(no_match()) < DEFAULT_MIN_CONFIDENCE
    assert model.confidence(no_match()) < model.confidence(strong_match()) / 2
    # The fitted cut points are where the default thresholds fall.
    assert model.calibrated(model.answer_point) == pytest.approx(DEFAULT_MIN_CONFIDENCE)
    assert model.calibrated(model.uncertain_point) == pytest.approx(DEFAULT_UNCERTAIN_CONFIDENCE)
    # A clause nearer the question, using more of its words, is likelier to answer it; a
    # signal the fitting left out (weight 0, `bench.train_coverage --without`) moves nothing.
    base = no_match()[0]
    weight = dict(zip(model.features, model.weights, strict=True))
    assert weight["cosine"] > 0 and weight["coverage"] > 0
    for name, better in (("cosine", 0.6), ("cosine_z", 3.0), ("coverage", 0.8)):
        moved = tuple(better if f == name else v for f, v in zip(FEATURES, base, strict=True))
        if weight[name] == 0:
            assert model.probability(moved) == model.probability(base), name
        else:
            assert model.probability(moved) > model.probability(base), name


@needs_numpy
def test_a_damaged_or_foreign_model_file_is_refused_with_its_name(tmp_path: Path) -> None:
    truncated = tmp_path / "coverage.npz"
    truncated.write_bytes(coverage.MODEL_FILE.read_bytes()[:100])
    with pytest.raises(ModelFileError, match=r"coverage\.npz"):
        coverage.read(truncated)
    model = coverage.read(coverage.MODEL_FILE)
    other = CoverageModel(
        ("best_cosine",), (0.0,), (1.0,), (1.0,), 0.0, model.answer_point, model.uncertain_point
    )
    foreign = tmp_path / "foreign.npz"
    other.save(foreign)
    with pytest.raises(ModelFileError, match="fitted on"):
        coverage.read(foreign)


@needs_numpy
def test_signals_are_relative_to_the_policy_asked() -> None:
    import numpy as np

    lexical = evidence(unknown=0.0)
    column = {name: FEATURES.index(name) for name in FEATURES}
    cited = [Cited(0.6, 0.5, 0.5), Cited(0.3, 0.2, 0.2)]
    alone = coverage.signals(policy_similarities(0.6, 0.3), cited, lexical)
    assert alone[0][column["cosine"]] == pytest.approx(0.6)
    assert alone[1][column["cosine_gap"]] == pytest.approx(0.3)
    assert alone[0][column["rank"]] == 0.0 < alone[1][column["rank"]]
    # The same cosine stands out less in a policy whose clauses are all near it ...
    crowded = coverage.signals(policy_similarities(0.6, 0.55), cited, lexical)
    assert crowded[0][column["cosine_z"]] < alone[0][column["cosine_z"]]
    # ... and less among many clauses, where some clause is near any question by chance.
    similarity = policy_similarities(0.6, 0.3, clauses=2000)
    many = coverage.signals(similarity, cited, lexical)
    raw_z = (0.6 - np.median(similarity)) / similarity.std()
    assert many[0][column["cosine_z"]] == pytest.approx(raw_z - math.sqrt(2 * math.log(2000)))
    # Too few clauses for a spread: no z-score rather than a wild one.
    few = coverage.signals(np.array([0.6, 0.1]), cited, lexical)
    assert few[0][column["cosine_z"]] == 0.0


@needs_numpy
def test_the_training_script_in_reduced_mode_gives_the_same_model_twice(
    tmp_path: Path,
) -> None:
    from bench import train_coverage
    from bench.sets import POLICYQA_DEV, SHARED_POLICIES

    if not SHARED_POLICIES.is_dir() or not POLICYQA_DEV.exists():
        pytest.skip("shared evaluation data is not on this machine")
    models = []
    for run in range(2):
        rows = train_coverage.collect(HashingEmbedder(), reduced=True)
        model = train_coverage.train(rows)
        out = tmp_path / f"run{run}.npz"
        model.save(out)
        models.append(coverage.read(out))
        assert "leave-one-policy-out" in train_coverage.report(rows, model)
    assert models[0] == models[1]
    assert {r.role for r in rows} == {"tuning", "held-out", "policyqa", "cross"}
    assert not any(r.covered for r in rows if r.role == "cross")


def bundled() -> tuple[Storage, int]:
    storage = Storage.memory()
    return storage, PolicyLibrary(storage).load_file(BUNDLED_POLICY).version.id


@needs_numpy
def test_without_embeddings_the_lexical_confidence_still_separates_covered_questions() -> None:
    storage, version = bundled()
    hybrid = HybridRetriever(storage, BrokenEmbedder())
    lexical = LexicalRetriever(storage)
    questions = load_questions(ROOT / "eval" / "bundled-policy.jsonl")
    confidences = {True: [], False: []}  # type: dict[bool, list[float]]
    for q in questions:
        result = hybrid.retrieve(q.question, [version])
        assert result == lexical.retrieve(q.question, [version])
        confidences[q.covered].append(result.confidence)
    assert hybrid.off_because is not None
    covered, uncovered = confidences[True], confidences[False]
    above = sum(c > u for c in covered for u in uncovered) / (len(covered) * len(uncovered))
    assert above > 0.8  # the lexical model's AUC on its tuning set
    answered_wrongly = sum(u >= DEFAULT_MIN_CONFIDENCE for u in uncovered) / len(uncovered)
    assert answered_wrongly < 0.5


WAREHOUSE_POLICY = [
    "Employees must not post about customers on social media.",
    "Employees must not post photos of the warehouse on social media.",
    "Employees may post about company events on social media.",
    "Employees should report a lost badge to security.",
]
WAREHOUSE_QUESTION = "can I post forklift photos from the warehouse on social media"


def test_rarest_says_whether_a_clause_uses_the_question_s_rarest_word_the_policy_knows() -> None:
    from tests.test_retrieval import store

    storage, version = store(WAREHOUSE_POLICY)
    lexical = LexicalRetriever(storage)
    # "warehouse" is in one clause, "post" in three: the clause with "warehouse" covers the
    # rarest word, the others cover most of the question's other words but not that one.
    # "forklift" is rarer still, but no clause uses it, so it cannot be the one that counts.
    assessment = lexical.assess(WAREHOUSE_QUESTION, [version])
    by_text = {s.stored.clause.text: s.stored for s in assessment.scores}
    warehouse = by_text["Employees must not post photos of the warehouse on social media."]
    customers = by_text["Employees must not post about customers on social media."]
    assert lexical.rarest_covered(assessment, warehouse) == 1.0
    assert lexical.rarest_covered(assessment, customers) == 0.0
    # A question with no word the policy uses has no rarest word to cover.
    unknown = lexical.assess("forklift", [version], extra=[customers])
    assert lexical.rarest_covered(unknown, customers) == 0.0


@needs_numpy
def test_the_hybrid_hands_the_rarest_signal_to_the_coverage_model() -> None:
    from tests.test_retrieval import store

    storage, version = store(WAREHOUSE_POLICY)
    found = HybridRetriever(storage, HashingEmbedder()).assess(WAREHOUSE_QUESTION, (version,))
    assert found is not None
    column = FEATURES.index("rarest")
    by_text = {
        s.stored.clause.text: signals[column]
        for s, signals in zip(found.ranked, found.signals, strict=False)
    }
    assert by_text[WAREHOUSE_POLICY[1]] == 1.0
    assert by_text.get(WAREHOUSE_POLICY[0], 0.0) == 0.0
