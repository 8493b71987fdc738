"""The encoder's batches are bounded by their word pieces (rows × length), not only by their rows: long
clauses (256 word pieces) run a few at a time, so embedding a policy does not take `serve`
past its memory target for a moment; short texts still run 32 together. The vectors do not
depend on how the texts were batched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.retrieval.minilm import BATCH_SIZE, MAX_WORD_PIECES, MiniLM, load
from bot.retrieval.semantic import model_folder, semantic_available

pytestmark = pytest.mark.skipif(not semantic_available(), reason="the model is not installed")

#: What 32 clauses of 256 word pieces gave the attention before: rows × length².
UNBOUNDED = BATCH_SIZE * MAX_WORD_PIECES**2


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
    for weights in (model.word_embeddings, model.layers[0].query, model.layers[-1].output):
        assert not weights.flags.writeable
        base = weights
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        assert isinstance(base, np.memmap) or not isinstance(base, np.ndarray)
