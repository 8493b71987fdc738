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
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
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
from bot.evaluation import LabeledQuestion

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
    precision = true / flagged.sum() if flagged.sum() else 0.0
    recall = true / (~covered).sum() if (~covered).sum() else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


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


def fit(all_samples: list[Sample]) -> Fit:
    tuning = [s for s in all_samples if s.tuning]
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


def main() -> None:
    from bench.sets import all_sets
    from bot.retrieval.lexical import Evidence, LexicalRetriever

    sets = all_sets(include_policyqa=False)
    tuning = {s.name for s in sets if s.tuning}
    lexical = {s.name: LexicalRetriever(s.storage) for s in sets}

    def lexical_features(
        s: EvalSet, versions: tuple[int, ...], q: LabeledQuestion
    ) -> tuple[float, ...]:
        return lexical[s.name].assess(q.question, versions).evidence.vector()

    result = fit(samples(sets, lexical_features))
    print(report("lexical", Evidence.FEATURES, result, tuning), flush=True)

    print(
        "\nThe semantic hybrid's confidence is the coverage model: "
        "python -m bench.train_coverage fits and reports it."
    )
