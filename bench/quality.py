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

from bench.sets import EvalSet
from bot.evaluation import EvalReport, LabeledQuestion, evaluate_parts
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
        parts: list[tuple[list[LabeledQuestion], Callable[[str], Retrieval]]] = [
            (questions, answers.__getitem__) for questions, answers in self.by_part
        ]
        return evaluate_parts(name or self.eval_set.name, parts, threshold)


def answer_all(eval_set: EvalSet, retriever: AnyRetriever, limit: int = 5) -> Answers:
    by_part = []
    for versions, questions in eval_set.parts:
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
