"""Retrieval quality on every labeled set, ours beside the peers, at equal citation size.

Every retriever answers every question once; its "not covered" threshold is the one that
maximises not-covered F1 on the tuning sets (PolicyQA has no uncovered questions and is not
used for it), then applied unchanged to the held-out sets.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench.sets import AS_WRITTEN, EvalSet, Wrapper, wrap
from bot.evaluation import EvalReport, LabeledQuestion, Outcome, outcome, summarize
from bot.models import Retrieval


class CachedEmbedder:
    """Remembers vectors by text, so a benchmark can embed all its questions in one batch."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.vectors: dict[str, Any] = {}

    def prime(self, texts: Sequence[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            self.vectors.update(zip(missing, self.embedder.encode(missing), strict=True))

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        self.prime(texts)
        return np.stack([self.vectors[t] for t in texts])


class AnyRetriever(Protocol):
    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval: ...


@dataclass
class Answers:
    """One retriever's retrievals for one set, so thresholds can be tried without re-asking."""

    eval_set: EvalSet
    by_part: list[tuple[list[LabeledQuestion], dict[str, Retrieval]]]

    def report(self, threshold: float, name: str = "") -> EvalReport:
        return summarize(name or self.eval_set.name, self.outcomes(threshold))

    def outcomes(self, threshold: float) -> list[Outcome]:
        return [
            outcome(q, answers[q.question], threshold)
            for questions, answers in self.by_part
            for q in questions
        ]


def answer_all(
    eval_set: EvalSet, retriever: AnyRetriever, limit: int = 5, wrapper: Wrapper = AS_WRITTEN
) -> Answers:
    """Every question of the set, as written or wrapped in chat (see bench.sets.wrap)."""
    by_part = []
    for versions, written in eval_set.parts:
        questions = [wrap(q, wrapper) for q in written]
        answers = {q.question: retriever.retrieve(q.question, versions, limit) for q in questions}
        by_part.append((questions, answers))
    return Answers(eval_set, by_part)


def calibrate(answers: Sequence[Answers]) -> float:
    """The threshold with the best mean not-covered F1 over the given (tuning) sets."""
    candidates = sorted(
        {r.confidence for a in answers for _, part in a.by_part for r in part.values()}
    )
    if not candidates:
        return 0.0
    # Midpoints between observed confidences, so the threshold is not fitted to one question.
    points = [candidates[0] - 1e-6] + [(a + b) / 2 for a, b in itertools.pairwise(candidates)]
    step = max(1, len(points) // 400)
    best, best_f1 = points[0], -1.0
    for threshold in points[::step]:
        f1 = sum(a.report(threshold).unanswered_f1 for a in answers) / len(answers)
        if f1 > best_f1 + 1e-9:
            best, best_f1 = threshold, f1
    return best


#: What the paired comparison measures, by EvalReport field name.
COMPARED_METRICS = ("recall_at_1", "mrr", "unanswered_f1")


@dataclass(frozen=True)
class Difference:
    """Ours minus a peer on one metric, with a 95% paired bootstrap interval."""

    value: float
    low: float
    high: float

    @property
    def clear(self) -> bool:
        """The interval excludes zero: more than the luck of which questions were written."""
        return self.low > 0 or self.high < 0


def paired_difference(
    ours: Sequence[Outcome],
    peer: Sequence[Outcome],
    metric: str,
    rounds: int = 2000,
    seed: int = 0,
) -> Difference:
    """Resample the same questions for both retrievers, `rounds` times.

    The sets hold 20 to 60 answerable questions, where one question moves recall@1 by up to
    0.05: the interval says whether a gap is larger than that kind of luck.
    """
    import numpy as np

    if len(ours) != len(peer):
        raise ValueError("paired outcomes must answer the same questions")
    rng = np.random.default_rng(seed)
    covered = np.array([o.covered for o in ours])
    if metric == "unanswered_f1":
        if covered.all():
            return Difference(0.0, 0.0, 0.0)
        idx = rng.integers(0, len(ours), size=(rounds, len(ours)))
        mine = _f1(ours, covered, idx)
        theirs = _f1(peer, covered, idx)
        point = _f1(ours, covered, None) - _f1(peer, covered, None)
    else:
        values: Callable[[Outcome], float] = {
            "recall_at_1": lambda o: float(o.rank == 1),
            "mrr": lambda o: 1 / o.rank if o.rank else 0.0,
        }[metric]
        a = np.array([values(o) for o, c in zip(ours, covered, strict=True) if c])
        b = np.array([values(o) for o, c in zip(peer, covered, strict=True) if c])
        if not len(a):
            return Difference(0.0, 0.0, 0.0)
        idx = rng.integers(0, len(a), size=(rounds, len(a)))
        mine, theirs = a[idx].mean(axis=1), b[idx].mean(axis=1)
        point = float(a.mean() - b.mean())
    low, high = np.percentile(mine - theirs, [2.5, 97.5])
    return Difference(float(point), float(low), float(high))


def _f1(outcomes: Sequence[Outcome], covered: Any, idx: Any) -> Any:
    """Not-covered F1 of the whole list (idx None) or of each resampled row of indices."""
    import numpy as np

    flagged = np.array([o.flagged for o in outcomes])
    true = (flagged & ~covered).astype(float)
    if idx is None:
        true_n, flagged_n, uncovered_n = true.sum(), flagged.sum(), (~covered).sum()
    else:
        true_n = true[idx].sum(axis=1)
        flagged_n = flagged[idx].sum(axis=1)
        uncovered_n = (~covered)[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(flagged_n > 0, true_n / np.maximum(flagged_n, 1), 0.0)
        recall = np.where(uncovered_n > 0, true_n / np.maximum(uncovered_n, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return f1 if idx is not None else float(f1)
