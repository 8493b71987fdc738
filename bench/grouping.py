"""`python -m bench grouping`: how well the review list groups questions the policy does not
answer, measured on labeled questions it was not fitted to.

The set (eval/grouping-tuning.jsonl, eval/grouping-heldout.jsonl) holds questions a social-media
policy does not answer, each labeled with its topic, in several phrasings, and near misses
that share a word with a topic but not its subject. It was written before its authors read
the synonym lists, and split by topic: constants are chosen on the tuning half only, and the
held-out half is only measured. Each half goes through the real `ReviewQueue` (bot/review/)
over the bundled policy, as one review list, in several arrival orders (grouping is
incremental, so order matters); a pair of questions counts as grouped when they end in the
same group, and as belonging together when they share a topic. Precision, recall and F1 are
over those pairs, summed over the orders.

Reported: the shipped rules; without any everyday synonyms; each synonym line left out on
its own (its effect on each half); the joining threshold on the tuning half; with question
embeddings blended in (when the embedding model is installed, as `make setup` does), their
share and threshold chosen on the tuning half.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.sections import write_between
from bot.models import Retrieval
from bot.policies import PolicyLibrary
from bot.retrieval.lexical import LexicalRetriever
from bot.retrieval.vocabulary import TOPIC_SYNONYMS
from bot.review.grouping import (
    EMBEDDING_JOIN_THRESHOLD,
    EMBEDDING_SHARE,
    JOIN_THRESHOLD,
    GroupingRules,
    QuestionVectors,
    synonym_stems,
)
from bot.review.queue import ReviewQueue
from bot.store.database import Storage

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "tuning": ROOT / "eval" / "grouping-tuning.jsonl",
    "held out": ROOT / "eval" / "grouping-heldout.jsonl",
}
POLICY = ROOT / "policies" / "social-media-and-electronic-communication.md"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
START = "<!-- grouping:start -->"
END = "<!-- grouping:end -->"
#: Arrival orders each half is grouped in (seeded shuffles), pairs summed over them.
ORDERS = 3
#: The joining thresholds tried on the tuning half, words alone and with embeddings.
THRESHOLDS = tuple(round(0.1 + 0.05 * n, 2) for n in range(11))
EMBEDDING_SHARES = (0.5, 0.7, 0.9, 1.0)
EMBEDDING_THRESHOLDS = tuple(round(0.2 + 0.05 * n, 2) for n in range(7))


@dataclass(frozen=True)
class Labeled:
    question: str
    topic: str


def load(path: Path) -> list[Labeled]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(Labeled(row["question"], row["topic"]))
    return out


@dataclass(frozen=True)
class Pairs:
    """Pairs of questions: grouped and belonging together, grouped apart, together apart."""

    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0

    def __add__(self, other: Pairs) -> Pairs:
        return Pairs(
            self.true_pos + other.true_pos,
            self.false_pos + other.false_pos,
            self.false_neg + other.false_neg,
        )

    @property
    def precision(self) -> float:
        grouped = self.true_pos + self.false_pos
        return self.true_pos / grouped if grouped else 1.0

    @property
    def recall(self) -> float:
        together = self.true_pos + self.false_neg
        return self.true_pos / together if together else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def pairs_of(topics: Sequence[str], groups: Sequence[int]) -> Pairs:
    tp = fp = fn = 0
    for i in range(len(topics)):
        for j in range(i + 1, len(topics)):
            grouped, together = groups[i] == groups[j], topics[i] == topics[j]
            tp += grouped and together
            fp += grouped and not together
            fn += together and not grouped
    return Pairs(tp, fp, fn)


class Lists:
    """Review lists over the bundled policy: one fresh store per run, retrieval worked out
    once per question (it does not depend on the grouping rules)."""

    def __init__(self, retriever: Callable[[Storage], Any]) -> None:
        self.make_retriever = retriever
        self._retrievals: dict[str, Retrieval] = {}

    def group(
        self, questions: Sequence[str], rules: GroupingRules, vectors: QuestionVectors | None
    ) -> list[int]:
        """The group each question ends in, placed in the order given."""
        storage = Storage.memory()
        try:
            version = PolicyLibrary(storage).load_file(POLICY).version
            retriever = self.make_retriever(storage)
            lexical = retriever if isinstance(retriever, LexicalRetriever) else retriever.lexical

            def retrieve(text: str) -> Retrieval:
                if text not in self._retrievals:
                    self._retrievals[text] = retriever.retrieve(text, (version.id,))
                return self._retrievals[text]

            queue = ReviewQueue(storage, retrieve, lexical, vectors, rules)
            out = []
            for text in questions:
                retrieval = retrieve(text)
                question_id = storage.log_question(
                    {
                        "platform": "bench",
                        "text": text,
                        "answered": 0,
                        "confidence": round(retrieval.confidence, 4),
                        "version_ids": list(retrieval.version_ids),
                        "status": "open",
                        "review_reason": "not_covered",
                    }
                )
                out.append(queue.join(question_id, text, retrieval, queue.profile(text)))
            return out
        finally:
            storage.close()

    def measure(
        self, labeled: Sequence[Labeled], rules: GroupingRules, vectors: QuestionVectors | None
    ) -> Pairs:
        total = Pairs()
        for seed in range(ORDERS):
            order = list(labeled)
            random.Random(seed).shuffle(order)
            groups = self.group([q.question for q in order], rules, vectors)
            total += pairs_of([q.topic for q in order], groups)
        return total


def without_line(index: int) -> GroupingRules:
    lines = [line for n, line in enumerate(TOPIC_SYNONYMS) if n != index]
    return GroupingRules(synonyms=synonym_stems(lines))


def best_threshold(
    measure: Callable[[float], Pairs], thresholds: Sequence[float]
) -> tuple[float, Pairs]:
    """The threshold with the best F1 (ties: the nearest the middle of the range)."""
    scored = [(t, measure(t)) for t in thresholds]
    middle = thresholds[len(thresholds) // 2]
    return max(scored, key=lambda item: (round(item[1].f1, 4), -abs(item[0] - middle)))


@dataclass
class GroupingRun:
    sets: dict[str, list[Labeled]]
    rows: list[tuple[str, dict[str, Pairs]]]  # (what was grouped, half -> pairs)
    lines: list[tuple[str, dict[str, float]]]  # (synonym line, half -> F1 change left out)
    lexical_threshold: tuple[float, Pairs]
    embedding: tuple[float, float, Pairs] | None  # share, threshold, tuning pairs
    seconds: float


def run_all(embedder: Any | None = None) -> GroupingRun:
    start = time.perf_counter()
    sets = {name: load(path) for name, path in SETS.items()}
    lexical = Lists(LexicalRetriever)
    shipped = GroupingRules()

    def both(
        rules: GroupingRules, lists: Lists = lexical, vectors: QuestionVectors | None = None
    ) -> dict[str, Pairs]:
        return {half: lists.measure(qs, rules, vectors) for half, qs in sets.items()}

    today = both(shipped)
    rows = [(f"shipped rules (words, threshold {JOIN_THRESHOLD})", today)]
    bare = GroupingRules(synonyms={})
    rows.append(("without everyday synonyms", both(bare)))
    lines = []
    for index, line in enumerate(TOPIC_SYNONYMS):
        left_out = both(without_line(index))
        lines.append((" / ".join(line), {h: left_out[h].f1 - today[h].f1 for h in sets}))
    threshold = best_threshold(
        lambda t: lexical.measure(sets["tuning"], replace(shipped, join_threshold=t), None),
        THRESHOLDS,
    )
    chosen = replace(shipped, join_threshold=threshold[0])
    rows.append((f"words, threshold {threshold[0]} (best F1 on tuning; not shipped)", both(chosen)))
    embedding = None
    if embedder is not None:
        from bot.retrieval.semantic import HybridRetriever

        vectors = QuestionVectors(lambda: embedder)
        hybrid = Lists(lambda storage: HybridRetriever(storage, embedder))
        rows.append(
            (
                f"with embeddings, share {EMBEDDING_SHARE}, threshold {EMBEDDING_JOIN_THRESHOLD} "
                "(shipped)",
                both(shipped, hybrid, vectors),
            )
        )
        best: tuple[float, float, Pairs] | None = None
        for share in EMBEDDING_SHARES:

            def on_tuning(threshold: float, share: float = share) -> Pairs:
                rules = replace(shipped, embedding_share=share, embedding_join_threshold=threshold)
                return hybrid.measure(sets["tuning"], rules, vectors)

            t, pairs = best_threshold(on_tuning, EMBEDDING_THRESHOLDS)
            if best is None or pairs.f1 > best[2].f1:
                best = (share, t, pairs)
        assert best is not None
        embedding = best
        fitted = replace(shipped, embedding_share=best[0], embedding_join_threshold=best[1])
        rows.append(
            (
                f"with embeddings, share {best[0]}, threshold {best[1]} (best on tuning)",
                both(fitted, hybrid, vectors),
            )
        )
        rows.append(
            (
                "with embeddings (shipped), without everyday synonyms",
                both(replace(shipped, synonyms={}), hybrid, vectors),
            )
        )
    return GroupingRun(sets, rows, lines, threshold, embedding, time.perf_counter() - start)


def markdown(run: GroupingRun) -> str:
    counts = ", ".join(
        f"{half} {len(qs)} questions in {len({q.topic for q in qs})} topics"
        for half, qs in run.sets.items()
    )
    out = [
        "## Review-list grouping",
        "",
        "Reproduce: `python -m bench grouping` (rewrites only this section with `--out`). "
        f"Uncovered questions labeled by topic ({counts}, near misses included as topics of "
        "their own), grouped by the real review list over the bundled policy in "
        f"{ORDERS} arrival orders; pairwise precision / recall / F1 over questions grouped "
        "together and questions of one topic. Constants are chosen on the tuning half; the "
        "held-out half is only measured. Words alone keep their threshold: the tuning half's "
        "best F1 comes at a precision where a reviewed answer would reach askers of other "
        "topics (`bot/review/grouping.py`).",
        "",
        "| grouping | tuning P | R | F1 | **held-out** P | R | F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, by_half in run.rows:
        t, h = by_half["tuning"], by_half["held out"]
        out.append(
            f"| {name} | {t.precision:.3f} | {t.recall:.3f} | {t.f1:.3f} "
            f"| {h.precision:.3f} | {h.recall:.3f} | {h.f1:.3f} |"
        )
    out += [
        "",
        "Each everyday-synonym line left out on its own, against the shipped rules (F1 change; "
        "negative: the line helps):",
        "",
        "| synonym line | tuning ΔF1 | held-out ΔF1 |",
        "| --- | ---: | ---: |",
    ]
    for line, change in run.lines:
        out.append(f"| {line} | {change['tuning']:+.3f} | {change['held out']:+.3f} |")
    if not run.lines:
        out.append("| (none shipped: `topic_synonyms` in bot/retrieval/vocabulary.toml) | — | — |")
    if run.embedding is None:
        out += ["", "Embeddings: not measured (the embedding model is not installed)."]
    out += ["", f"Measured in {run.seconds:.0f} s."]
    return "\n".join(out)


def block(section: str) -> str:
    """The section between its markers, as the page holds it."""
    return f"{START}\n{section}\n{END}"


def write_section(section: str, path: Path = BENCHMARKS) -> None:
    """Put the section between its markers in the page, or at its end the first time."""
    write_between(path, START, END, block(section))


def main(argv: Sequence[str] = ()) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench grouping")
    parser.add_argument("--fast", action="store_true", help="words only, without embeddings")
    parser.add_argument("--out", type=Path, help="write this section into the Markdown page")
    args = parser.parse_args(list(argv))
    embedder = None
    if not args.fast:
        from bot.retrieval.semantic import MiniLMEmbedder, semantic_available

        embedder = MiniLMEmbedder() if semantic_available() else None
    section = markdown(run_all(embedder))
    print(section, flush=True)
    if args.out:
        write_section(section, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
