"""The numpy engine gives sentence-transformers' vectors for all-MiniLM-L6-v2.

The reference vectors in tests/golden/minilm_reference.json were computed by
sentence-transformers on torch (bench/minilm_reference.py, `make reference-vectors`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.retrieval.minilm import MAX_WORD_PIECES, MiniLM, ModelError, load
from bot.retrieval.semantic import model_folder, semantic_available

REFERENCE = Path(__file__).parent / "golden" / "minilm_reference.json"
#: Cosine similarity to the reference below which the engine is not the same model.
SAME_VECTOR = 0.9999

pytestmark = pytest.mark.skipif(not semantic_available(), reason="the model is not installed")


@pytest.fixture(scope="module")
def model() -> MiniLM:
    folder = model_folder()
    assert folder is not None
    return load(folder)


@pytest.fixture(scope="module")
def reference() -> dict[str, list]:  # type: ignore[type-arg]
    loaded: dict[str, list] = json.loads(REFERENCE.read_text(encoding="utf-8"))  # type: ignore[type-arg]
    return loaded


def test_vectors_match_sentence_transformers_in_one_batch(
    model: MiniLM,
    reference: dict[str, list],  # type: ignore[type-arg]
) -> None:
    # One batch of very different lengths: padding must not reach the pooled vectors.
    ours = model.encode(reference["sentences"])
    theirs = np.asarray(reference["vectors"], dtype=np.float32)
    cosines = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosines.min() >= SAME_VECTOR, dict(zip(reference["sentences"], cosines, strict=True))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_vectors_match_one_text_at_a_time(
    model: MiniLM,
    reference: dict[str, list],  # type: ignore[type-arg]
) -> None:
    for sentence, vector in zip(reference["sentences"], reference["vectors"], strict=True):
        ours = model.encode([sentence])[0]
        assert float(ours @ np.asarray(vector, dtype=np.float32)) >= SAME_VECTOR, sentence


def test_long_text_is_cut_at_256_word_pieces(
    model: MiniLM,
    reference: dict[str, list],  # type: ignore[type-arg]
) -> None:
    longest = max(reference["sentences"], key=len)
    untruncated = dict(
        zip(reference["sentences"], reference["word_pieces_untruncated"], strict=True)
    )
    assert untruncated[longest] > MAX_WORD_PIECES  # the fixture does exercise the cut
    assert len(model.tokenizer.encode(longest).ids) == MAX_WORD_PIECES
    # Whatever follows the cut changes nothing.
    longer = model.encode([longest, longest + " Anything said after the cut is ignored."])
    assert float(longer[0] @ longer[1]) > 0.99999


def test_a_model_folder_without_its_files_says_which_are_missing(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"lacks tokenizer\.json, model\.safetensors"):
        MiniLM(tmp_path)
