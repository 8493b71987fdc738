"""Speed: retrieval latency by corpus size, `ask` throughput, ingestion, cold start.
Slack events through `policybot serve` and its memory are in bench/slack_load.py.

Every figure is measured on this machine in the run that writes docs/benchmarks.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpus import policy_sentences, synthetic_store
from bench.sets import ROOT
from bot.retrieval.lexical import LexicalRetriever

SIZES = (100, 1_000, 10_000, 100_000)

#: The dense retrievers embed at most this many distinct clauses; larger corpora repeat the
#: vectors. A matrix product's time does not depend on the values, and embedding 100,000
#: clauses on two CPU cores would take longer than the whole benchmark is allowed.
EMBEDDED_CLAUSES = 2_000


@dataclass(frozen=True)
class Latency:
    retriever: str
    clauses: int
    p50_ms: float
    p99_ms: float


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def time_queries(retrieve: Callable[[str], Any], questions: Sequence[str]) -> tuple[float, float]:
    for question in questions[:10]:
        retrieve(question)  # warm caches, as a serving process would be
    times = []
    for question in questions:
        start = time.perf_counter()
        retrieve(question)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), percentile(times, 0.99)


def _tiled(matrix: Any, rows: int) -> Any:
    import numpy as np

    repeats = -(-rows // matrix.shape[0])
    return np.ascontiguousarray(np.tile(matrix, (repeats, 1))[:rows])


def measure(
    name: str, size: int, retriever: Any, versions: tuple[int, ...], questions: Sequence[str]
) -> Latency:
    p50, p99 = time_queries(lambda q: retriever.retrieve(q, versions), questions)
    return Latency(name, size, p50, p99)


def retrieval_latency(
    questions: Sequence[str], embedder: Any | None, sizes: Sequence[int] = SIZES
) -> list[Latency]:
    import numpy as np

    from bench.peers import BM25Peer, DensePeer

    out = []
    with tempfile.TemporaryDirectory(prefix="policybot-bench-") as folder:
        for size in sizes:
            storage, version = synthetic_store(size, Path(folder) / f"bench-{size}.db")
            versions = (version,)
            out.append(
                measure("ours (lexical)", size, LexicalRetriever(storage), versions, questions)
            )
            bm25 = BM25Peer(storage)
            bm25.index(versions)
            out.append(measure("bm25s", size, bm25, versions, questions))
            if embedder is not None:
                from bot.retrieval.semantic import HybridRetriever, clause_passage

                clauses = storage.clauses(versions)
                sample = clauses[:EMBEDDED_CLAUSES]
                vectors = embedder.encode([clause_passage(c) for c in sample])
                matrix = _tiled(np.asarray(vectors, dtype=np.float32), len(clauses))
                dense = DensePeer(storage, embedder)
                dense._indexes[versions] = (matrix, clauses)
                out.append(measure("MiniLM (dense)", size, dense, versions, questions[:100]))
                hybrid = HybridRetriever(storage, embedder)
                hybrid._matrices[versions] = (matrix, clauses)
                out.append(
                    measure("ours (semantic hybrid)", size, hybrid, versions, questions[:100])
                )
            storage.close()
    return out


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def policybot_command() -> list[str]:
    found = shutil.which("policybot", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "bot.cli"]


def run_cli(args: Sequence[str], env: dict[str, str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        [*policybot_command(), *args],
        input=stdin,
        text=True,
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return time.perf_counter() - start


def cli_env(db: Path, retriever: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"POLICYBOT_DB": str(db), "POLICYBOT_RETRIEVER": retriever})
    return env


def cold_ask(retriever: str, runs: int = 5) -> float:
    """Median wall time of one `policybot ask` process on an existing database."""
    with tempfile.TemporaryDirectory(prefix="policybot-cold-") as folder:
        env = cli_env(Path(folder) / "cold.db", retriever)
        run_cli(["policy", "list"], env)  # loads the bundled policy once
        return statistics.median(
            run_cli(["ask", "may I post photos from the offsite?"], env) for _ in range(runs)
        )


def batch_throughput(questions: Sequence[str], retriever: str) -> tuple[int, float]:
    """Questions per second through `policybot ask -`, start-up included."""
    with tempfile.TemporaryDirectory(prefix="policybot-batch-") as folder:
        env = cli_env(Path(folder) / "batch.db", retriever)
        run_cli(["policy", "list"], env)
        seconds = run_cli(["ask", "--json", "-"], env, stdin="\n".join(questions) + "\n")
        return len(questions), len(questions) / seconds


def hundred_page_policy(path: Path, pages: int = 100, chars_per_page: int = 3_000) -> int:
    """A Markdown policy of about `pages` pages, recombined from real policy sentences."""
    import random

    rng = random.Random(11)
    sentences = policy_sentences()
    lines = ["# Synthetic hundred-page policy", ""]
    size = 0
    section = 0
    while size < pages * chars_per_page:
        section += 1
        lines += [f"## {section}. Section {section}", ""]
        for sub in range(1, 4):
            lines += [f"### {section}.{sub} Part {sub}", ""]
            for _ in range(3):
                paragraph = " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 5)))
                lines += [paragraph, ""]
                size += len(paragraph)
    path.write_text("\n".join(lines), encoding="utf-8")
    return size


def ingestion_time(runs: int = 3) -> tuple[int, int, float]:
    """(characters, clauses, median seconds) for `policybot policy load` of 100 pages."""
    from bot.policies import PolicyLibrary
    from bot.store.database import Storage

    with tempfile.TemporaryDirectory(prefix="policybot-ingest-") as folder:
        file = Path(folder) / "hundred-pages.md"
        chars = hundred_page_policy(file)
        times = []
        clauses = 0
        for run in range(runs):
            storage = Storage.open(Path(folder) / f"ingest-{run}.db")
            start = time.perf_counter()
            version = PolicyLibrary(storage).load_file(file).version
            times.append(time.perf_counter() - start)
            clauses = version.clause_count
            storage.close()
        return chars, clauses, statistics.median(times)
