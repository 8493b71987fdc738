"""`python -m bench multiturn`: follow-ups and topic switches in labeled conversations.

eval/multiturn/<stem>.jsonl holds conversations of 2-4 turns over the shared policy <stem>.md
(bundled.jsonl: over the bundled policy), one a line: {"turns": [{"kind": "first" |
"follow-up" | "topic-switch", "question": ..., "lines" or "sections": gold}, ...]}. Policies in
bench.sets.TUNING_SETS are the tuning part; the others are held out, never fitted on.

Each turn is asked after the turns before it as the method under test understood them, so a
wrong reading carries on as it would in a thread. Recall@3: a gold clause among the top three
retrieved. Methods: the follow-up alone (what the bot did before), always combined with the
question before (what dragging every turn would give), the shipped rule (`FollowUpRule`), and
the rule refitted on the tuning policies (and left-one-policy-out on them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.sections import write_between
from bench.sets import ROOT, SHARED_POLICIES, TUNING_SETS
from bot.conversation import FollowUpRule, Turn, combined
from bot.evaluation import LabeledQuestion
from bot.models import Retrieval
from bot.policies import PolicyLibrary
from bot.retrieval.lexical import LexicalRetriever
from bot.store.database import Storage

MULTITURN = ROOT / "eval" / "multiturn"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
START = "<!-- multiturn:start -->"
END = "<!-- multiturn:end -->"
FOLLOW_UP, TOPIC_SWITCH = "follow-up", "topic-switch"
KINDS = ("first", FOLLOW_UP, TOPIC_SWITCH)
#: The rule's constants tried when fitting: -1 words means shortness alone never counts; a
#: confidence cut above 1 means a confident follow-up is combined all the same.
SHORT_WORDS = tuple(range(-1, 7))
ALONE_CONFIDENT = tuple(round(0.2 + 0.05 * n, 2) for n in range(18))


@dataclass(frozen=True)
class LabeledTurn:
    kind: str
    gold: LabeledQuestion


@dataclass
class Conversations:
    """One policy's conversations in a store of their own, retrievals cached by text."""

    name: str
    storage: Storage
    version_ids: tuple[int, ...]
    conversations: list[list[LabeledTurn]]
    retriever: Any = None
    _cache: dict[str, Retrieval] = field(default_factory=dict)

    @property
    def tuning(self) -> bool:
        return self.name in TUNING_SETS

    def retrieve(self, text: str) -> Retrieval:
        if text not in self._cache:
            self._cache[text] = self.retriever.retrieve(text, self.version_ids, 5)
        return self._cache[text]

    def count(self, kind: str) -> int:
        return sum(t.kind == kind for c in self.conversations for t in c)


def load_conversations(path: Path) -> list[list[LabeledTurn]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            turns = []
            for raw in json.loads(line)["turns"]:
                kind = str(raw["kind"])
                if kind not in KINDS:
                    raise ValueError(f"unknown kind {kind!r}")
                turns.append(
                    LabeledTurn(
                        kind,
                        LabeledQuestion(
                            str(raw["question"]),
                            sections=tuple(str(s) for s in raw.get("sections", [])),
                            lines=tuple((int(a), int(b)) for a, b in raw.get("lines", [])),
                        ),
                    )
                )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a labeled conversation ({error})") from None
        if not turns or turns[0].kind != "first":
            raise ValueError(f"{path}:{number}: a conversation starts with its first turn")
        out.append(turns)
    return out


def conversation_sets() -> list[Conversations]:
    """Every labeled conversation set whose policy is here: the bundled one, and each shared
    policy with a file in eval/multiturn."""
    out = []
    for path in sorted(MULTITURN.glob("*.jsonl")):
        storage = Storage.memory()
        library = PolicyLibrary(storage)
        if path.stem == "bundled":
            policies = sorted((ROOT / "policies").glob("*.md"))
        else:
            policies = [SHARED_POLICIES / f"{path.stem}.md"]
            if not policies[0].exists():
                continue
        versions = tuple(library.load_file(p).version.id for p in policies)
        out.append(Conversations(path.stem, storage, versions, load_conversations(path)))
    return out


#: How a method reads a question after the turns before it: the text retrieval sees.
Method = Callable[[Conversations, str, Sequence[Turn]], str]


def alone(conversations: Conversations, question: str, turns: Sequence[Turn]) -> str:
    return question


def always_combined(conversations: Conversations, question: str, turns: Sequence[Turn]) -> str:
    return combined(question, turns[-1]) if turns else question


def by_rule(rule: FollowUpRule) -> Method:
    def read(conversations: Conversations, question: str, turns: Sequence[Turn]) -> str:
        reading, _ = rule.resolve(question, turns, conversations.retrieve)
        return reading.standalone

    return read


@dataclass
class Hits:
    """Recall@3 counts per kind of turn."""

    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    turns: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    combined: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def add(self, other: Hits) -> Hits:
        for kind in KINDS:
            self.hits[kind] += other.hits[kind]
            self.turns[kind] += other.turns[kind]
            self.combined[kind] += other.combined[kind]
        return self

    def recall(self, kind: str) -> float:
        return self.hits[kind] / self.turns[kind] if self.turns[kind] else 0.0

    @property
    def later_hits(self) -> int:
        """Hits among follow-ups and topic switches: what fitting maximizes."""
        return self.hits[FOLLOW_UP] + self.hits[TOPIC_SWITCH]


def measure(conversations: Conversations, method: Method) -> Hits:
    out = Hits()
    for conversation in conversations.conversations:
        turns: list[Turn] = []
        for turn in conversation:
            asked = turn.gold.question
            text = method(conversations, asked, turns)
            retrieval = conversations.retrieve(text)
            top = [s.stored for s in retrieval.ranked[:3]]
            out.turns[turn.kind] += 1
            out.hits[turn.kind] += any(turn.gold.matches(c) for c in top)
            out.combined[turn.kind] += text != asked
            turns.append(Turn(asked, "" if text == asked else text))
    return out


def pooled(sets: Iterable[Conversations], method: Method) -> Hits:
    total = Hits()
    for s in sets:
        total.add(measure(s, method))
    return total


def fit(sets: Sequence[Conversations]) -> FollowUpRule:
    """The rule's constants with the most follow-ups and topic switches right in the top 3 on
    these sets; ties go to the first in the grid (without cues, fewest words, lowest
    confidence cut)."""
    best: tuple[int, FollowUpRule] | None = None
    for cues, words, cut in itertools.product((False, True), SHORT_WORDS, ALONE_CONFIDENT):
        rule = FollowUpRule(short_words=words, alone_confident=cut, cues=cues)
        score = pooled(sets, by_rule(rule)).later_hits
        if best is None or score > best[0]:
            best = (score, rule)
    assert best is not None
    return best[1]


@dataclass
class Row:
    method: str
    per_set: dict[str, Hits]
    held_out: Hits
    tuning: Hits


@dataclass
class MultiturnRun:
    retriever: str
    sets: list[Conversations]
    rows: list[Row]
    fitted: FollowUpRule
    left_out: dict[str, tuple[FollowUpRule, Hits]]
    seconds: float


def run_all(make_retriever: Callable[[Storage], Any] | None = None, name: str = "") -> MultiturnRun:
    start = time.perf_counter()
    make = make_retriever or LexicalRetriever
    sets = conversation_sets()
    for s in sets:
        s.retriever = make(s.storage)
    tuning = [s for s in sets if s.tuning]
    held_out = [s for s in sets if not s.tuning]
    fitted = fit(tuning)
    methods: list[tuple[str, Method]] = [
        ("follow-up alone (before)", alone),
        ("always combined with the question before", always_combined),
        (f"shipped rule ({describe(FollowUpRule())})", by_rule(FollowUpRule())),
        (f"refitted on tuning ({describe(fitted)})", by_rule(fitted)),
    ]
    rows = [
        Row(
            label,
            {s.name: measure(s, method) for s in sets},
            pooled(held_out, method),
            pooled(tuning, method),
        )
        for label, method in methods
    ]
    left_out = {}
    for s in tuning:
        rule = fit([t for t in tuning if t is not s])
        left_out[s.name] = (rule, measure(s, by_rule(rule)))
    return MultiturnRun(
        name or make.__name__, sets, rows, fitted, left_out, time.perf_counter() - start
    )


def describe(rule: FollowUpRule) -> str:
    cues = ", or cues" if rule.cues else ""
    cut = f", alone below {rule.alone_confident:g}" if rule.alone_confident < 1 else ""
    return f"at most {rule.short_words} content words{cues}{cut}"


def _cell(hits: Hits, kind: str) -> str:
    return f"{hits.recall(kind):.3f} ({hits.hits[kind]}/{hits.turns[kind]})"


def markdown(runs: Sequence[MultiturnRun]) -> str:
    first = runs[0]
    follow_ups = sum(s.count(FOLLOW_UP) for s in first.sets)
    switches = sum(s.count(TOPIC_SWITCH) for s in first.sets)
    tuning = ", ".join(s.name.split("-")[0] for s in first.sets if s.tuning)
    held = ", ".join(s.name.split("-")[0] for s in first.sets if not s.tuning)
    out = [
        "## Conversations: follow-ups and topic switches",
        "",
        "Reproduce: `python -m bench multiturn` (rewrites only this section with `--out`). "
        f"{sum(len(s.conversations) for s in first.sets)} labeled conversations "
        f"(eval/multiturn: {follow_ups} follow-ups, {switches} topic switches) over "
        f"{len(first.sets)} policies; tuning: {tuning}; held out: {held}. Each turn is asked "
        "after the earlier turns as the method read them; recall@3 (a gold clause in the top "
        "three), follow-ups and topic switches apart. The LLM condense path is not measured "
        "here: the loopback stub answers by rote, so its figures would measure the stub.",
    ]
    for run in runs:
        out += [
            "",
            f"### {run.retriever}",
            "",
            "| method | held-out follow-ups | held-out topic switches "
            "| tuning follow-ups | tuning topic switches |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for row in run.rows:
            out.append(
                f"| {row.method} | {_cell(row.held_out, FOLLOW_UP)} "
                f"| {_cell(row.held_out, TOPIC_SWITCH)} | {_cell(row.tuning, FOLLOW_UP)} "
                f"| {_cell(row.tuning, TOPIC_SWITCH)} |"
            )
        out += ["", "Per policy, follow-ups / topic switches:", ""]
        names = [s.name for s in run.sets]
        out.append(
            "| method | "
            + " | ".join(n.split("-")[0] + ("*" if n in TUNING_SETS else "") for n in names)
            + " |"
        )
        out.append("| --- |" + " ---: |" * len(names))
        for row in run.rows:
            cells = [
                f"{hits.recall(FOLLOW_UP):.2f} / {hits.recall(TOPIC_SWITCH):.2f}"
                for hits in (row.per_set[n] for n in names)
            ]
            out.append(f"| {row.method} | " + " | ".join(cells) + " |")
        out += ["", "(* tuning policy.) Left one tuning policy out, refitted on the other:", ""]
        for name, (rule, hits) in run.left_out.items():
            out.append(
                f"- {name.split('-')[0]}: fitted {describe(rule)}; follow-ups "
                f"{_cell(hits, FOLLOW_UP)}, topic switches {_cell(hits, TOPIC_SWITCH)}"
            )
        shipped = run.rows[2]
        dragged = shipped.held_out.combined[TOPIC_SWITCH]
        out += [
            "",
            f"Shipped rule on the held-out policies: {shipped.held_out.combined[FOLLOW_UP]} of "
            f"{shipped.held_out.turns[FOLLOW_UP]} follow-ups combined, {dragged} of "
            f"{shipped.held_out.turns[TOPIC_SWITCH]} topic switches combined (dragged). "
            f"{run.seconds:.1f} s.",
        ]
    return "\n".join(out)


def block(section: str) -> str:
    return f"{START}\n{section}\n{END}"


def write_section(section: str, path: Path = BENCHMARKS) -> None:
    """Put the section between its markers in the page, or at its end the first time."""
    write_between(path, START, END, block(section))


def runs(fast: bool, embedder: Any | None = None) -> list[MultiturnRun]:
    out = [run_all(LexicalRetriever, "ours (lexical)")]
    if not fast:
        from bot.retrieval.semantic import HybridRetriever, MiniLMEmbedder, semantic_available

        if embedder is None and semantic_available():
            embedder = MiniLMEmbedder()
        if embedder is not None:
            model = embedder
            out.append(
                run_all(lambda storage: HybridRetriever(storage, model), "ours (semantic hybrid)")
            )
    return out


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench multiturn")
    parser.add_argument("--fast", action="store_true", help="lexical only, without embeddings")
    parser.add_argument("--out", type=Path, help="write this section into the Markdown page")
    args = parser.parse_args(list(argv))
    section = markdown(runs(args.fast))
    print(section, flush=True)
    if args.out:
        write_section(section, args.out)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
