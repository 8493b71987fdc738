"""bench/train_coverage.py's fittings and search: which signals a model is fitted on, how much
the PolicyQA and cross-kind rows weigh, and how a fitting is compared with the shipped one
leaving each tuning policy out. On rows made up here, so every figure is known."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.train_coverage import (
    SHIPPED,
    Candidate,
    Figures,
    Fitting,
    Row,
    cuts_report,
    lopo,
    search,
    search_report,
    train,
    tuning_lopo,
)
from bot.retrieval import coverage
from bot.retrieval.coverage import FEATURES

TUNING_POLICIES = ("alpha", "beta", "gamma")


def made_up_rows(seed: int = 7) -> list[Row]:
    """Questions asked of three tuning policies and some privacy ones: the cosine and the
    coverage part covered from uncovered questions, the other signals are noise."""
    rng = random.Random(seed)
    rows: list[Row] = []

    def pairs(covered: bool) -> tuple[tuple[float, ...], ...]:
        out = []
        for rank in range(3):
            vector = [rng.gauss(0.0, 1.0) for _ in FEATURES]
            lift = 1.0 if covered and rank == 0 else 0.0
            vector[FEATURES.index("cosine")] = 0.3 + 0.25 * lift + rng.gauss(0.0, 0.1)
            vector[FEATURES.index("coverage")] = 0.3 + 0.2 * lift + rng.gauss(0.0, 0.15)
            out.append(tuple(vector))
        return tuple(out)

    for policy in TUNING_POLICIES:
        for _ in range(40):
            covered = rng.random() < 0.7
            right = (covered and rng.random() < 0.9, False, False)
            rows.append(
                Row("tuning", policy, frozenset({policy}), covered, right, pairs(covered), 0.5)
            )
    for index in range(30):
        name = f"policyqa:{index % 3}"
        rows.append(
            Row(
                "policyqa",
                "policyqa",
                frozenset({name}),
                True,
                (True, False, False),
                pairs(True),
                0.5,
            )
        )
        rows.append(
            Row(
                "cross",
                "cross-kind",
                frozenset({name, "alpha"}),
                False,
                (False,) * 3,
                pairs(False),
                0.5,
            )
        )
    return rows


def test_a_fitting_on_fewer_signals_gives_the_others_no_weight(tmp_path: Path) -> None:
    rows = made_up_rows()
    model = train(rows, Fitting(features=("cosine", "coverage")))
    used = {FEATURES.index("cosine"), FEATURES.index("coverage")}
    assert all(w == 0.0 for i, w in enumerate(model.weights) if i not in used)
    assert all(model.weights[i] > 0 for i in used)
    # The file keeps every signal's slot, so the retriever reads it as it reads the shipped one.
    path = tmp_path / "coverage.npz"
    model.save(path)
    assert coverage.read(path) == model
    # A signal left out cannot move the probability; one fitted on does.
    base = [0.0] * len(FEATURES)
    base[FEATURES.index("cosine")] = 0.3
    moved_noise = list(base)
    moved_noise[FEATURES.index("words")] = 5.0
    assert model.probability(moved_noise) == model.probability(base)
    moved_cosine = list(base)
    moved_cosine[FEATURES.index("cosine")] = 0.6
    assert model.probability(moved_cosine) > model.probability(base)
    # Fitted on every signal, the noise gets some weight of its own.
    assert train(rows).weights[FEATURES.index("words")] != 0.0


def test_no_weight_for_the_policyqa_and_cross_kind_rows_is_a_fit_on_the_tuning_rows_alone() -> None:
    rows = made_up_rows()
    tuning = [r for r in rows if r.role == "tuning"]
    assert train(rows, Fitting(other_weight=0.0)) == train(tuning)
    assert train(rows) != train(tuning)
    halved = train(rows, Fitting(other_weight=0.5))
    assert halved not in (train(rows), train(tuning))


def test_a_fitting_names_only_signals_the_model_has() -> None:
    with pytest.raises(ValueError, match="signals to fit"):
        Fitting(features=("cosine", "best_cosine"))
    with pytest.raises(ValueError, match="signals to fit"):
        Fitting(features=())
    with pytest.raises(ValueError, match="negative"):
        Fitting(l2=-1.0)


def test_a_lower_answered_precision_answers_from_a_lower_cut_and_changes_nothing_else() -> None:
    rows = made_up_rows()
    shipped = train(rows)
    looser = train(rows, Fitting(answered_precision=0.6))
    assert looser.answer_point < shipped.answer_point
    assert looser.weights == shipped.weights and looser.intercept == shipped.intercept
    assert "answered from precision 0.6" in Fitting(answered_precision=0.6).label()
    assert "precision" not in SHIPPED.label()
    for precision in (0.0, 1.5):
        with pytest.raises(ValueError, match="precision"):
            Fitting(answered_precision=precision)


def test_the_cuts_report_measures_the_fitting_at_each_precision_left_out() -> None:
    rows = made_up_rows()
    text = cuts_report(rows, SHIPPED, (0.6, 0.9))
    lines = text.splitlines()
    at = {float(line.split()[0]): line for line in lines if line.startswith("  0.")}
    assert set(at) == {0.6, 0.9}
    # At its own precision the shipped fitting is the shipped one, so no worse than itself.
    assert at[0.9].endswith("no worse")
    assert at[0.9].split(None, 1)[1].removesuffix("  no worse") == lines[3].strip()
    assert at[0.6].split(None, 1)[1] != at[0.9].split(None, 1)[1]


def test_the_search_leaves_each_tuning_policy_out_and_measures_the_shipped_fitting_alike() -> None:
    rows = made_up_rows()
    cosine_only = Fitting(features=("cosine",))
    found = search(rows, [SHIPPED, cosine_only])
    assert [c.fitting for c in found] == [SHIPPED, cosine_only]
    shipped = found[0]
    # The shipped fitting's figures are the tuning folds of the report's own LOPO, pooled:
    # the same three policies, each measured on its own questions as written.
    assert shipped.figures == tuning_lopo(rows, SHIPPED)
    folds = lopo(rows)
    assert set(TUNING_POLICIES) <= set(folds)
    assert shipped.figures.questions == sum(len(folds[p][1]) for p in TUNING_POLICIES)
    # The privacy policies are left out too in the report, never in the search.
    assert set(lopo(rows, tuning_only=True)) == set(TUNING_POLICIES)
    text = search_report(found)
    assert "2 fittings" in text and "without cosine_gap" in text
    with pytest.raises(ValueError, match="shipped"):
        search_report(found[1:])


def test_a_fitting_is_preferred_only_when_no_worse_on_auc_f1_and_harm_together() -> None:
    def candidate(auc: float, f1: float, harmful_of_answered: float) -> Candidate:
        figures = Figures(100, 0.5, 0.8, 0.05, harmful_of_answered, 0.4, 0.9, f1, auc)
        return Candidate(Fitting(features=("cosine",)), figures)

    shipped = candidate(0.80, 0.50, 0.06)
    shipped = Candidate(SHIPPED, shipped.figures)
    assert candidate(0.85, 0.55, 0.05).no_worse_than(shipped)
    assert candidate(0.80, 0.50, 0.06).no_worse_than(shipped)
    assert not candidate(0.85, 0.55, 0.07).no_worse_than(shipped)  # more often harmful
    assert not candidate(0.79, 0.55, 0.05).no_worse_than(shipped)  # separates worse
    assert not candidate(0.85, 0.49, 0.05).no_worse_than(shipped)  # fewer caught
