"""The encoder's batches are bounded by their word pieces (rows × length), not only by their rows: long
clauses (256 word pieces) run a few at a time, so embedding a policy does not take `serve`
past its memory target for a moment; short texts still run 32 together. The vectors do not
depend on how the texts were batched."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from bot.retrieval.minilm import BATCH_SIZE, MAX_WORD_PIECES, TOKEN_BUDGET, MiniLM, load
from bot.retrieval.semantic import model_folder, semantic_available

pytestmark = pytest.mark.skipif(not semantic_available(), reason="the model is not installed")

#: What 32 clauses of 256 word pieces gave the attention before: rows × length².
UNBOUNDED = BATCH_SIZE * MAX_WORD_PIECES**2
#: What one run of the encoder may allocate at once, whatever its batch's shape: the largest
#: full batch took 81 MiB (4 texts of 256 word pieces) when GELU ran on the whole layer at once.
RUN_MEMORY_LIMIT = 24 * 2**20


@pytest.fixture(scope="module")
def model() -> MiniLM:
    folder = model_folder()
    assert isinstance(folder, Path)
    return load(folder)


def test_long_texts_run_in_smaller_batches_and_give_the_same_vectors(
    model: MiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_text = " ".join(f"employees must not disclose item {n} publicly" for n in range(60))
    texts = [f"{n} {long_text}" for n in range(BATCH_SIZE)] + ["may I post photos?"] * 4
    shapes: list[tuple[int, int]] = []
    run = model._run

    def recording(sequences: list[np.ndarray]) -> np.ndarray:
        shapes.append((len(sequences), max(len(s) for s in sequences)))
        return run(sequences)

    monkeypatch.setattr(model, "_run", recording)
    batched = model.encode(texts)
    long_shapes, shapes = shapes, []
    model.encode([f"may I post photo {n} of the office?" for n in range(40)])
    short_shapes = shapes
    monkeypatch.setattr(model, "_run", run)
    one_by_one = np.vstack([model.encode([text]) for text in texts])
    largest = max(rows * length**2 for rows, length in long_shapes)
    assert max(length for _, length in long_shapes) == MAX_WORD_PIECES  # the long ones were cut
    assert largest <= UNBOUNDED // 4, long_shapes
    assert [rows for rows, _ in short_shapes] == [BATCH_SIZE, 40 - BATCH_SIZE]
    np.testing.assert_allclose(batched, one_by_one, atol=2e-5)


def test_the_weights_are_a_read_only_map_of_the_model_file_not_a_copy(model: MiniLM) -> None:
    """Read through safetensors, the weights were copies made while the file was mapped: the
    two at once took `serve` 90 MiB past its resting memory while loading."""
    for weights in (model.position_embeddings, model.layers[0].query, model.layers[-1].output):
        assert not weights.flags.writeable
        base = weights
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        assert isinstance(base, np.memmap) or not isinstance(base, np.ndarray)


def _resident_kib_of(mapped: Path) -> int:
    """How much of the file `mapped` is in this process's resident memory, from /proc."""
    resident, in_mapping = 0, False
    for line in Path("/proc/self/smaps").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:  # a mapping's first line
            in_mapping = len(fields) >= 6 and fields[5] == str(mapped)
        elif in_mapping and fields[0] == "Rss:":
            resident += int(fields[1])
    return resident


_TABLE_PROBE = """
import sys
from pathlib import Path
from bot.retrieval.minilm import MiniLM
from bot.retrieval.semantic import model_folder
from tests.test_minilm_batches import _resident_kib_of

folder = model_folder()
model = MiniLM(folder)
weights = folder.resolve() / "model.safetensors"
vocabulary = model.tokenizer.get_vocab()
# Every 7th word piece of the vocabulary, spread over the whole table.
pieces = [piece for piece, _ in sorted(vocabulary.items(), key=lambda kv: kv[1])][1000::7]
model.encode([" ".join(pieces[i : i + 100]) for i in range(0, len(pieces), 100)])
table_kib = model.tokenizer.get_vocab_size() * model.dimensions * 4 // 1024
print(_resident_kib_of(weights), weights.stat().st_size // 1024, table_kib)
"""


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc")
def test_the_word_piece_table_never_enters_resident_memory() -> None:
    """The table is 47 MB of the 87 MB file; a policy uses a few thousand of its rows, but
    indexing the mapped table paged in nearly all of it (the kernel maps a touched page's
    neighbours too). Read by row from the file, none of its pages is mapped in. Measured in
    a fresh interpreter: another test's use of the same file in this process (the tuned
    layers' checks read whole tensors) would count here too."""
    probe = subprocess.run(
        [sys.executable, "-c", _TABLE_PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    resident_kib, file_kib, table_kib = (int(n) for n in probe.stdout.split())
    # Pages at the table's edges belong to its neighbours too, and the kernel maps around a
    # touched page: a few hundred KiB of the table can come in with the tensors beside it (seen:
    # 45 KiB over the bare difference). Indexing the table brought in ~44,000 KiB of it.
    edges_kib = 1024
    assert resident_kib <= file_kib - table_kib + edges_kib


@pytest.mark.parametrize("length", [16, 64, MAX_WORD_PIECES])
def test_one_run_of_a_full_batch_allocates_at_most_24_mib(model: MiniLM, length: int) -> None:
    """numpy reports its arrays to tracemalloc, so its peak is the run's working memory."""
    rows = min(BATCH_SIZE, TOKEN_BUDGET // length)
    batch = [np.arange(1000, 1000 + length, dtype=np.int64) for _ in range(rows)]
    model._run(batch)  # anything made once (the weights' views) made before measuring
    tracemalloc.start()
    try:
        model._run(batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= RUN_MEMORY_LIMIT, f"{rows} × {length} word pieces: {peak / 2**20:.1f} MiB"
