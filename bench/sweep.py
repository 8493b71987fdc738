"""Measure the ranking knobs on the tuning sets only, at equal citation size.

    python -m bench sweep          # lexical, and the semantic hybrid when its extra is here

Each row sets one constant of bot/retrieval/lexical.py or bot/retrieval/semantic.py to another
value, answers every tuning-set question again and prints the mean recall@1, recall@3, MRR and
the mean length of the three cited clauses (a gain that comes with longer citations is no gain).
The held-out sets are never read here, so nothing chosen from this table leaks into them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import bot.retrieval.lexical
import bot.retrieval.semantic
from bench.quality import AnyRetriever, answer_all
from bench.sets import EvalSet, all_sets
from bot.evaluation import Cuts

#: (module, constant, values to try); the shipped value is measured first as the baseline.
KNOBS: tuple[tuple[ModuleType, str, tuple[Any, ...]], ...] = (
    (bot.retrieval.lexical, "BM25_SHARE", (0.2, 0.3, 0.5, 0.6)),
    (
        bot.retrieval.lexical,
        "FTS_WEIGHTS",
        ((1.0, 1.0, 0.5), (1.0, 1.0, 1.0), (1.0, 2.0, 1.0), (1.0, 0.0, 0.0)),
    ),
    (bot.retrieval.lexical, "EXPANSION_WEIGHT", (0.4, 0.8, 1.0)),
    (bot.retrieval.semantic, "SIMILARITY_SHARE", (0.5, 0.6, 0.8, 0.9)),
)
SEMANTIC_KNOBS = frozenset({"SIMILARITY_SHARE"})


@dataclass(frozen=True)
class Scores:
    recall_at_1: float
    recall_at_3: float
    mrr: float
    cited_chars: float


@contextlib.contextmanager
def setting(module: ModuleType, name: str, value: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def measure(sets: Sequence[EvalSet], make: Callable[[EvalSet], AnyRetriever]) -> Scores:
    """Means over the sets, each answered by a fresh retriever (no stale caches)."""
    point = bot.retrieval.lexical.DECISION_POINT  # ranking only: one cut is enough
    reports = [answer_all(s, make(s)).report(Cuts(point, point)) for s in sets]
    n = len(reports)
    return Scores(
        sum(r.recall_at_1 for r in reports) / n,
        sum(r.recall_at_3 for r in reports) / n,
        sum(r.mrr for r in reports) / n,
        sum(r.mean_cited_chars for r in reports) / n,
    )


def row(retriever: str, knob: str, scores: Scores) -> str:
    return (
        f"| {retriever} | {knob} | {scores.recall_at_1:.3f} | {scores.recall_at_3:.3f} "
        f"| {scores.mrr:.3f} | {scores.cited_chars:.0f} |"
    )


def main() -> None:
    sets = [s for s in all_sets(include_policyqa=False) if s.tuning]
    makers: dict[str, Callable[[EvalSet], AnyRetriever]] = {
        "lexical": lambda s: bot.retrieval.lexical.LexicalRetriever(s.storage)
    }
    if bot.retrieval.semantic.semantic_available():
        from bench.quality import CachedEmbedder

        embedder = CachedEmbedder(bot.retrieval.semantic.MiniLMEmbedder())
        embedder.prime([q.question for s in sets for _, qs in s.parts for q in qs])
        makers["semantic hybrid"] = lambda s: bot.retrieval.semantic.HybridRetriever(
            s.storage, embedder
        )
    print("Tuning sets only: " + ", ".join(s.short for s in sets) + " (means).\n")
    print("| retriever | setting | recall@1 | recall@3 | MRR | top-3 chars |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for retriever, make in makers.items():
        print(row(retriever, "shipped", measure(sets, make)), flush=True)
        for module, name, values in KNOBS:
            if name in SEMANTIC_KNOBS and retriever == "lexical":
                continue
            for value in values:
                with setting(module, name, value):
                    scores = measure(sets, make)
                print(row(retriever, f"{name} = {value}", scores), flush=True)
