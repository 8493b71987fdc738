"""Fit the "not covered" confidence models on the tuning sets and report the held-out sets.

    python -m bench fit            # the lexical model (the hybrid's: bench/train_coverage.py)

Each retriever exposes the signals behind its confidence (`Evidence.vector()`); a logistic
regression (L2, features standardised while fitting) learns P(covered) from the tuning sets
only, then the probability that maximises mean not-covered F1 on those same sets becomes the
raw decision point that `calibrated` maps onto the default threshold. The tuning questions
are fitted both as written and wrapped in chat (`bench.sets.FIT_WRAPPERS`), so that padding a
question does not pass for coverage. The script prints the constants to commit into
bot/retrieval/lexical.py, and the held-out F1 they give, as
written and in other chat (`HELD_OUT_WRAPPERS`), which was never used to choose anything.

Leave-one-policy-out (`leave_one_out`): the model and its decision point refitted with each
tuning set left out and measured on it, so the tuning sets' own figures are out of sample too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from bench.sets import (
    AS_WRITTEN,
    FIT_WRAPPERS,
    HELD_OUT_WRAPPERS,
    EvalSet,
    Wrapper,
    wrap,
)
from bot.evaluation import LabeledQuestion, mann_whitney_auc, precision_recall_f1

#: L2 penalty on the standardised coefficients: a few dozen uncovered questions support only
#: a gently fitted model.
L2 = 1.0


@dataclass
class Sample:
    set_name: str
    tuning: bool
    covered: bool
    features: tuple[float, ...]
    wrapper: Wrapper = AS_WRITTEN


Featurize = Callable[[EvalSet, tuple[int, ...], LabeledQuestion], tuple[float, ...]]


def wrappers_while_fitting(eval_set: EvalSet) -> tuple[Wrapper, ...]:
    """Tuning questions are fitted in FIT_WRAPPERS; held-out ones only measured, in others."""
    return FIT_WRAPPERS if eval_set.tuning else HELD_OUT_WRAPPERS


def samples(sets: Sequence[EvalSet], featurize: Featurize) -> list[Sample]:
    """Every question as written; tuning questions also in FIT_WRAPPERS, held-out ones in
    HELD_OUT_WRAPPERS (measured only)."""
    out = []
    for eval_set in sets:
        for wrapper in (AS_WRITTEN, *wrappers_while_fitting(eval_set)):
            for versions, questions in eval_set.parts:
                for q in questions:
                    features = featurize(eval_set, versions, wrap(q, wrapper))
                    out.append(Sample(eval_set.name, eval_set.tuning, q.covered, features, wrapper))
    return out


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = L2, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Newton's method on standardised features, each row counted `weights` times (1 when
    None); returns (intercept, coefficients) for raw x."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    design = np.hstack([np.ones((len(z), 1)), z])
    beta = np.zeros(design.shape[1])
    penalty = np.eye(design.shape[1]) * l2
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(100):
        p = 1 / (1 + np.exp(-design @ beta))
        gradient = design.T @ (w * (p - y)) + penalty @ beta
        hessian = design.T @ (design * (w * p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    coefficients = beta[1:] / std
    intercept = beta[0] - float((beta[1:] * mean / std).sum())
    return float(intercept), coefficients


def not_covered_f1(probabilities: np.ndarray, covered: np.ndarray, threshold: float) -> float:
    flagged = probabilities < threshold
    true = int((flagged & ~covered).sum())
    return precision_recall_f1(true, int(flagged.sum()) - true, int((~covered).sum()) - true)[2]


def best_threshold(groups: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The probability with the best mean not-covered F1 over the groups (midpoints only)."""
    values = sorted({float(v) for p, _ in groups for v in p})
    points = [(a + b) / 2 for a, b in itertools.pairwise(values)] or [0.5]
    best, best_f1 = points[0], -1.0
    for threshold in points:
        f1 = sum(not_covered_f1(p, c, threshold) for p, c in groups) / len(groups)
        if f1 > best_f1 + 1e-9:
            best, best_f1 = threshold, f1
    return best


@dataclass
class Fit:
    intercept: float
    coefficients: tuple[float, ...]
    raw_decision_point: float
    f1_by_set: dict[str, float]  # questions as written
    wrapped_f1_by_set: dict[str, float]  # mean over the set's wrappers


def fit(all_samples: list[Sample], fitted_on: Collection[str] | None = None) -> Fit:
    """Fitted on the sets named (by default the tuning sets), measured on every set."""
    tuning = [
        s for s in all_samples if (s.tuning if fitted_on is None else s.set_name in fitted_on)
    ]
    x = np.array([s.features for s in tuning], dtype=float)
    y = np.array([s.covered for s in tuning], dtype=float)
    intercept, coefficients = fit_logistic(x, y)

    def groups(rows: list[Sample]) -> dict[tuple[str, Wrapper], tuple[np.ndarray, np.ndarray]]:
        out: dict[tuple[str, Wrapper], tuple[np.ndarray, np.ndarray]] = {}
        for key in dict.fromkeys((s.set_name, s.wrapper) for s in rows):
            part = [s for s in rows if (s.set_name, s.wrapper) == key]
            if all(s.covered for s in part):
                continue
            features = np.array([s.features for s in part], dtype=float)
            p = 1 / (1 + np.exp(-(intercept + features @ coefficients)))
            out[key] = (p, np.array([s.covered for s in part]))
        return out

    grouped = groups(all_samples)
    tuning_names = {s.set_name for s in tuning}
    # Every tuning set, as written and wrapped, counts the same in the choice of threshold.
    threshold = best_threshold([v for k, v in grouped.items() if k[0] in tuning_names])
    f1 = {
        k[0]: not_covered_f1(p, c, threshold) for k, (p, c) in grouped.items() if k[1] == AS_WRITTEN
    }
    wrapped: dict[str, list[float]] = {}
    for (name, wrapper), (p, c) in grouped.items():
        if wrapper != AS_WRITTEN:
            wrapped.setdefault(name, []).append(not_covered_f1(p, c, threshold))
    return Fit(
        intercept,
        tuple(float(c) for c in coefficients),
        threshold,
        f1,
        {name: sum(v) / len(v) for name, v in wrapped.items()},
    )


def probabilities(result: Fit, rows: Sequence[Sample]) -> np.ndarray:
    features = np.array([s.features for s in rows], dtype=float)
    return np.asarray(1 / (1 + np.exp(-(result.intercept + features @ result.coefficients))))


@dataclass
class LeftOut:
    """One tuning set measured by the model fitted on the other tuning sets."""

    set_name: str
    raw_decision_point: float
    probabilities: np.ndarray  # P(covered) of each question as written, in the set's order
    covered: np.ndarray
    f1: float  # as written
    wrapped_f1: float  # mean over FIT_WRAPPERS


def leave_one_out(all_samples: list[Sample]) -> list[LeftOut]:
    tuning = list(dict.fromkeys(s.set_name for s in all_samples if s.tuning))
    out = []
    for left_out in tuning:
        result = fit(all_samples, fitted_on=[n for n in tuning if n != left_out])
        written = [s for s in all_samples if s.set_name == left_out and s.wrapper == AS_WRITTEN]
        out.append(
            LeftOut(
                left_out,
                result.raw_decision_point,
                probabilities(result, written),
                np.array([s.covered for s in written]),
                result.f1_by_set.get(left_out, 0.0),
                result.wrapped_f1_by_set.get(left_out, 0.0),
            )
        )
    return out


def auc(scores: np.ndarray, covered: np.ndarray) -> float | None:
    return mann_whitney_auc(
        [float(v) for v in scores[covered]], [float(v) for v in scores[~covered]]
    )


def leave_one_out_report(title: str, rows: Sequence[LeftOut]) -> str:
    lines = [f"## {title}, leave one tuning policy out", ""]
    lines.append(f"    {'left out':<40} decision  not-covered F1 written, wrapped  AUC")
    for row in rows:
        area = auc(row.probabilities, row.covered)
        lines.append(
            f"    {row.set_name[:40]:<40} {row.raw_decision_point:.4f}    {row.f1:.3f}  "
            f"{row.wrapped_f1:.3f}  {'—' if area is None else f'{area:.3f}'}"
        )
    return "\n".join(lines)


def report(title: str, names: Sequence[str], result: Fit, tuning: set[str]) -> str:
    lines = [f"## {title}", "", f"intercept = {result.intercept:.4f}", "coefficients:"]
    lines += [f"    {n:>18} {c:+.4f}" for n, c in zip(names, result.coefficients, strict=True)]
    lines += [f"raw decision point = {result.raw_decision_point:.4f}", ""]
    lines.append(f"    {'set':<40} {'role':<8} not-covered F1: as written, wrapped in chat")
    for name, f1 in result.f1_by_set.items():
        role = "tuning" if name in tuning else "held out"
        wrapped = result.wrapped_f1_by_set.get(name, 0.0)
        lines.append(f"    {name[:40]:<40} {role:<8} {f1:.3f}  {wrapped:.3f}")
    return "\n".join(lines)


def lexical_featurizer(sets: Sequence[EvalSet]) -> Featurize:
    """The lexical retriever's confidence signals, one retriever per set."""
    from bot.retrieval.lexical import LexicalRetriever

    lexical = {s.name: LexicalRetriever(s.storage) for s in sets}

    def features(s: EvalSet, versions: tuple[int, ...], q: LabeledQuestion) -> tuple[float, ...]:
        return lexical[s.name].assess(q.question, versions).evidence.vector()

    return features


def main() -> None:
    from bench.sets import all_sets
    from bot.retrieval.lexical import Evidence

    sets = all_sets(include_policyqa=False)
    tuning = {s.name for s in sets if s.tuning}
    lexical_samples = samples(sets, lexical_featurizer(sets))
    print(report("lexical", Evidence.FEATURES, fit(lexical_samples), tuning), flush=True)
    print("\n" + leave_one_out_report("lexical", leave_one_out(lexical_samples)), flush=True)

    print(
        "\nThe semantic hybrid's confidence is the coverage model: "
        "python -m bench.train_coverage fits it and reports its leave-one-policy-out figures."
    )
