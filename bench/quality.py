"""What askers get on every labeled set, ours beside the peers, at equal citation size.

Every retriever answers every question once. Ours is cut into outcomes at the shipped
settings; a peer has scores, not our confidence, so its two cut points are fitted on the
tuning sets only (`fit_cuts`, the same way for every peer; PolicyQA has no uncovered questions
and is not used for it), then applied unchanged to the held-out sets.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench.sets import AS_WRITTEN, EvalSet, Wrapper, wrap
from bot.evaluation import Cuts, EvalReport, LabeledQuestion, QuestionResult, result_of, summarize
from bot.models import Retrieval

#: Which tuned layers a benchmark's embedder uses, to compare two embedders without editing
#: the bot: unset, the shipped ones (bot/retrieval/semantic.py TUNED_LAYERS); `none`, the
#: wheel's own; else the path of a file bench/train_embedder.py wrote. Benchmarks only.
BENCH_TUNED_LAYERS = "BENCH_TUNED_LAYERS"


def bench_embedder() -> Any:
    """The embedder a benchmark measures (`MiniLMEmbedder`), as BENCH_TUNED_LAYERS says."""
    from pathlib import Path

    from bot.retrieval.semantic import MiniLMEmbedder

    chosen = os.environ.get(BENCH_TUNED_LAYERS, "").strip()
    if not chosen:
        return MiniLMEmbedder()
    tuned = None if chosen == "none" else Path(chosen)
    embedder = MiniLMEmbedder(tuned=tuned)
    if tuned is not None and "+tuned@" not in embedder.name:
        raise SystemExit(f"{BENCH_TUNED_LAYERS}: the tuned layers in {tuned} did not load")
    return embedder


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
    """One retriever's retrievals for one set, so cut points can be tried without re-asking."""

    eval_set: EvalSet
    by_part: list[tuple[list[LabeledQuestion], dict[str, Retrieval]]]

    def report(self, cuts: Cuts, name: str = "") -> EvalReport:
        return summarize(name or self.eval_set.name, self.results(cuts))

    def results(self, cuts: Cuts) -> list[QuestionResult]:
        return [
            result_of(q, answers[q.question], cuts)
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


def _candidate_points(confidences: Sequence[float], most: int = 400) -> list[float]:
    """Midpoints between observed confidences (and one below them all), so a cut point is
    never fitted onto one question; thinned to about `most` for speed."""
    values = sorted(set(confidences))
    if not values:
        return [0.0]
    points = [values[0] - 1e-6] + [(a + b) / 2 for a, b in itertools.pairwise(values)]
    return points[:: max(1, len(points) // most)]


def fit_cuts(answers: Sequence[Answers]) -> Cuts:
    """A peer's two cut points from the given (tuning) sets, each set counting the same.

    Answering: the point with the best mean not-covered F1 (how ours' POLICYBOT_MIN_CONFIDENCE
    was placed, by `python -m bench fit`). Uncertain: among the questions below that point,
    the one that best separates the unanswerable (which the uncertain band does not help) from
    the answerable with a right clause in the top 3 (which it does), by the mean of
    Youden's J (the share of the first below it minus the share of the second). Neither
    useful nor harmful can choose it: both only improve as more questions turn uncertain.
    """
    confidences = [r.confidence for a in answers for _, part in a.by_part for r in part.values()]
    points = _candidate_points(confidences)
    if not answers:
        return Cuts(0.0, 0.0)
    answer_from, best_f1 = points[0], -1.0
    for point in points:
        f1 = sum(a.report(Cuts(point, point)).unanswered_f1 for a in answers) / len(answers)
        if f1 > best_f1 + 1e-9:
            answer_from, best_f1 = point, f1
    below = [
        [r for r in a.results(Cuts(answer_from, answer_from)) if r.confidence < answer_from]
        for a in answers
    ]
    uncertain_from, best_j = answer_from, 0.0
    for point in [p for p in points if p < answer_from]:
        j = sum(_youden(rows, point) for rows in below) / len(below)
        if j > best_j + 1e-9:
            uncertain_from, best_j = point, j
    return Cuts(answer_from, uncertain_from)


def _youden(rows: Sequence[QuestionResult], point: float) -> float:
    unanswerable = [r for r in rows if not r.covered]
    helped = [r for r in rows if r.covered and r.right_in_top_3]
    if not unanswerable or not helped:
        return 0.0
    return sum(r.confidence < point for r in unanswerable) / len(unanswerable) - sum(
        r.confidence < point for r in helped
    ) / len(helped)


#: What the paired comparison measures, by EvalReport field name.
COMPARED_METRICS = ("useful", "recall_at_3", "mrr", "unanswered_f1")


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
    ours: Sequence[QuestionResult],
    peer: Sequence[QuestionResult],
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
        values: Callable[[QuestionResult], float] = {
            "useful": lambda o: float(o.useful),
            "recall_at_1": lambda o: float(o.rank == 1),
            "recall_at_3": lambda o: float(o.right_in_top_3),
            "mrr": lambda o: 1 / o.rank if o.rank else 0.0,
        }[metric]
        counted = np.ones_like(covered) if metric == "useful" else covered  # else answerable
        a = np.array([values(o) for o, c in zip(ours, counted, strict=True) if c])
        b = np.array([values(o) for o, c in zip(peer, counted, strict=True) if c])
        if not len(a):
            return Difference(0.0, 0.0, 0.0)
        idx = rng.integers(0, len(a), size=(rounds, len(a)))
        mine, theirs = a[idx].mean(axis=1), b[idx].mean(axis=1)
        point = float(a.mean() - b.mean())
    low, high = np.percentile(mine - theirs, [2.5, 97.5])
    return Difference(float(point), float(low), float(high))


def _f1(outcomes: Sequence[QuestionResult], covered: Any, idx: Any) -> Any:
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
